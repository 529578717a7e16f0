/**
 * The `pas.*` settings a run starts from, read into plain values (the form's defaults come from
 * these, then from the last run on the model).
 */
import * as vscode from 'vscode';
import { PREPROCESSING_OPTIONS, roundToSetting, type PreprocessingPreset, type SetupSettings } from '../shared/runSetup';
import type { BackendChoice } from '../shared/workerProtocol';
import { parseDataSpec } from './core/cliArgs';

export function readSetupSettings(): SetupSettings {
  const config = vscode.workspace.getConfiguration('pas');
  const number = (key: string) => {
    const v = config.get<unknown>(key);
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };
  const pretrain = config.get<unknown>('pretrainEpochs', null);
  const preprocessing = config.get<string>('preprocessing');
  return {
    data: parseDataSpec(config.get<string>('data', 'sample')),
    targetFraction: number('targetMacsFraction'),
    pretrainEpochs: typeof pretrain === 'number' ? pretrain : null,
    searchEpochs: number('searchEpochs'),
    finetuneEpochs: number('finetuneEpochs'),
    batchSize: number('batchSize'),
    minKeep: number('minKeep'),
    roundTo: roundToSetting(config.get<unknown>('roundTo')),
    preprocessing: PREPROCESSING_OPTIONS.some((o) => o.preset === preprocessing) ? (preprocessing as PreprocessingPreset) : undefined,
    distill: config.get<boolean>('distill'),
  };
}

export function readBackendSetting(): BackendChoice {
  return vscode.workspace.getConfiguration('pas').get<BackendChoice>('backend', 'auto');
}
