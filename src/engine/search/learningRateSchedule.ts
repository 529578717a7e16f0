import type { PruneMethod } from '../../shared/workerProtocol';
import { cosineLearningRate } from '../train/trainer';
import { methodSearches } from './methods';

/**
 * How the weights' learning rate runs through the masked phases (docs/quality.md):
 * - `shared`: one cosine curve over all the weight training after the trained model, search and
 *   fine-tune epochs together. PaS's search epochs are the first epochs of the very curve a
 *   baseline fine-tunes along for the same number of epochs, so every method gets the same
 *   learning rates, epoch for epoch, and ends on the same low ones.
 * - `per-phase`: the search at a constant rate, then a cosine restarted over the fine-tune epochs
 *   alone (the PaS paper's shape: search at a small constant rate, then fine-tune with a decay).
 *   With short phases this gives PaS more learning rate in total than a baseline of equal epochs
 *   and a last epoch at a higher rate (2 + 2 epochs: a last epoch at base / 2, against base x 0.15
 *   for the 4-epoch cosine of the baselines).
 */
export type LearningRateSchedule = 'shared' | 'per-phase';

export const LEARNING_RATE_SCHEDULES: readonly LearningRateSchedule[] = ['shared', 'per-phase'];
export const DEFAULT_LEARNING_RATE_SCHEDULE: LearningRateSchedule = 'per-phase';

export interface ScheduleSettings {
  method: PruneMethod;
  searchEpochs: number;
  finetuneEpochs: number;
  learningRateSchedule?: LearningRateSchedule;
}

/** The weights' learning rate in an epoch of a masked phase (search or fine-tune). */
export function maskedPhaseLearningRate(settings: ScheduleSettings, phase: 'search' | 'finetune', epoch: number, base: number): number {
  const schedule = settings.learningRateSchedule ?? DEFAULT_LEARNING_RATE_SCHEDULE;
  // A method without a search goes straight to fine-tuning, whatever --search-epochs says.
  const searchEpochs = methodSearches(settings.method) ? settings.searchEpochs : 0;
  if (schedule === 'per-phase') return phase === 'search' ? base : cosineLearningRate(base, epoch, settings.finetuneEpochs);
  const total = searchEpochs + settings.finetuneEpochs;
  return cosineLearningRate(base, phase === 'search' ? epoch : searchEpochs + epoch, total);
}
