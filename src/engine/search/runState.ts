import * as fs from 'fs';
import * as path from 'path';
import type { EpochEvent, PruneMethod } from '../../shared/workerProtocol';
import type { PreprocessingOptions } from '../data';
import { PasInputError } from '../errors';
import { writeFileAtomic } from '../io';
import type { DeployedFormat } from '../onnx/saveDeployed';
import type { BudgetScheduleState } from './budgetSchedule';
import type { WidthConstraints } from './widthConstraints';
import type { LearningRateSchedule } from './learningRateSchedule';

export const RUN_STATE_FILE = 'state.json';
export const RUN_STATE_VERSION = 1;
export const CHECKPOINTS_DIR = 'checkpoints';
/** The original (unpruned, trained) model, kept for distillation and the fidelity of the result. */
export const ORIGINAL_MODEL_DIR = 'original';

/** Everything that decides what a run computes; a resumed run reads these from its folder. */
export interface RunSettings {
  modelSpec: string;
  builtinOptions: { inputShape?: [number, number, number]; numClasses?: number; widthMultiplier?: number };
  dataSpec: string;
  targetFraction: number;
  method: PruneMethod;
  pretrainEpochs: number;
  searchEpochs: number;
  finetuneEpochs: number;
  batchSize: number;
  seed: number;
  alpha: number;
  learningRates: { pretrain: number; search: number; finetune: number };
  maxTrain?: number;
  maxTest?: number;
  /** Format of the deployed model (absent in runs started before ONNX support: the input's own). */
  deployedFormat?: DeployedFormat;
  /** Optimizer steps per epoch at most (a trial run). */
  maxSteps?: number;
  /** Learn from the original model's outputs (also on when the data has no labels). */
  distill?: boolean;
  /** The model's input range and normalization (--input-range, --normalize). */
  preprocessing?: PreprocessingOptions;
  /** Examples per forward/backward pass; default: sized from the memory estimate. */
  microBatch?: number;
  /** Width constraints (absent in runs started before they existed: the defaults of that time apply, CONSTRAINTS_OF_RUNS_WITHOUT_THEM). */
  constraints?: WidthConstraints;
  /**
   * Spread of the importance prior on PaS's initial latents (latentInit.ts; 0: none). Absent:
   * the default, DEFAULT_LATENT_PRIOR.
   */
  latentPrior?: number;
  /** The weights' learning-rate curve through search and fine-tune (learningRateSchedule.ts). Absent: the default. */
  learningRateSchedule?: LearningRateSchedule;
}

export type RunPhase = 'pretrain' | 'search' | 'finetune' | 'done';

/**
 * The run's progress, rewritten atomically after every checkpoint. A checkpoint folder is
 * complete before the state names it, so a kill at any moment leaves a state that points at a
 * complete checkpoint (or no state at all, when the kill came before the first one).
 */
export interface RunState {
  version: number;
  settings: RunSettings;
  phase: RunPhase;
  /** Epochs completed in `phase`. */
  epochsDone: number;
  /** Checkpoint folder name under checkpoints/, holding the model after `epochsDone` epochs of `phase`. */
  checkpoint: string;
  accuracyBefore?: number;
  /** Channels the projection onto the budget moved after the search. */
  projectionMoved?: number;
  /** MACs of the masks at the end of the search, before the projection, / the full MACs. */
  searchEndMacsFraction?: number;
  /** The budget-loss schedule's state after the last search epoch, so that a resumed search continues it. */
  budgetSchedule?: BudgetScheduleState;
  history: EpochEvent[];
  /** Wall time of earlier (interrupted) sessions of this run. */
  wallSecondsBefore: number;
  /** The micro-batch in use (chosen at the start, halved by out-of-memory retries). */
  microBatch?: number;
}

/** Names the atomic writers give their temp files and folders (`X.tmp-<pid>-<random>`, `X.old-...`). */
const TEMP_ENTRY = /\.(tmp|old)-/;

/**
 * Removes temp files and folders a killed run left in its output folder and checkpoints. Only
 * called with the folder's lock held, so no live writer owns them.
 */
export function removeStaleTempEntries(outDir: string): void {
  for (const dir of [outDir, path.join(outDir, CHECKPOINTS_DIR)]) {
    if (!fs.existsSync(dir)) continue;
    for (const entry of fs.readdirSync(dir)) {
      if (TEMP_ENTRY.test(entry)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
  }
}

/**
 * True when a folder holds nothing but what a run killed before its first checkpoint leaves:
 * temp entries, an empty checkpoints folder, and (the caller's own) lock. Such a folder may be
 * started again; anything else in it is somebody's data.
 */
export function holdsOnlyRunLeftovers(outDir: string, ignored: string[]): boolean {
  return fs.readdirSync(outDir).every((entry) => {
    // The original model is written just before the first masked checkpoint; without a state it is a leftover.
    if (ignored.includes(entry) || TEMP_ENTRY.test(entry) || entry === ORIGINAL_MODEL_DIR) return true;
    const full = path.join(outDir, entry);
    return entry === CHECKPOINTS_DIR && fs.statSync(full).isDirectory() && fs.readdirSync(full).every((e) => TEMP_ENTRY.test(e));
  });
}

export function checkpointPath(outDir: string, name: string): string {
  return path.join(outDir, CHECKPOINTS_DIR, name);
}

export async function writeRunState(outDir: string, state: RunState): Promise<void> {
  await writeFileAtomic(path.join(outDir, RUN_STATE_FILE), JSON.stringify(state, null, 2));
  // Older checkpoints are dropped only after the state names the new one.
  const dir = path.join(outDir, CHECKPOINTS_DIR);
  for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (entry !== state.checkpoint) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}

export function readRunState(outDir: string): RunState {
  const file = path.join(outDir, RUN_STATE_FILE);
  if (!fs.existsSync(file)) {
    throw new PasInputError(`no ${RUN_STATE_FILE} here: not a pas search folder, or the run was stopped before its first checkpoint (then start it again with this --out)`, outDir);
  }
  let state: RunState;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8')) as RunState;
  } catch (error) {
    throw new PasInputError(`cannot read the run state: ${(error as Error).message}`, file);
  }
  if (state.version !== RUN_STATE_VERSION || !state.settings || !state.phase || typeof state.checkpoint !== 'string') {
    throw new PasInputError(`unrecognized run state (version ${state.version})`, file);
  }
  if (!fs.existsSync(path.join(checkpointPath(outDir, state.checkpoint), 'model.json'))) {
    throw new PasInputError(`the checkpoint '${state.checkpoint}' named by the run state is missing`, file);
  }
  return state;
}
