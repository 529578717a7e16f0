/**
 * What the engine reports about a model and a finished search: plain data, written to report.json
 * and sent as they are in the worker protocol (src/shared/workerProtocol.ts re-exports them).
 */
import type { BackendName, PruneMethod } from '../shared/workerProtocol';
import type { MacsFormulaTerm } from './budgetPreview';

/** One row of the per-layer table (inspect and search). */
export interface LayerRow {
  name: string;
  /** Keras class name, e.g. `Conv2D`, or `RepVGGBlock` for a fused multi-branch block. */
  type: string;
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride: number;
  outHeight: number;
  outWidth: number;
  macs: number;
  params: number;
}

/** Per-layer table and totals of one form (training-time or deployed) of a model. */
export interface ModelFormSummary {
  layers: LayerRow[];
  totalMacs: number;
  totalParams: number;
}

/** What `pas inspect --json` reports. */
export interface ModelReport {
  modelPath: string;
  inputShape: number[];
  numClasses: number;
  trainingForm: ModelFormSummary;
  deployedForm: ModelFormSummary;
  /** Channel groups that carry one mask each (coupled channels share a group). */
  prunableGroups: Array<{ name: string; width: number; layers: string[] }>;
  /**
   * The deployed model's MACs as a function of the groups' kept counts (group names in the terms):
   * enough to preview a budget under width constraints without the engine (budgetPreview.ts).
   */
  macsFormula?: MacsFormulaTerm[];
}

/** One prunable group's width, as the search moves it. */
export interface GroupWidth {
  name: string;
  originalWidth: number;
  searchedWidth: number;
}

export interface SearchReport {
  method: PruneMethod;
  modelPath: string;
  dataSpec: string;
  backend: BackendName;
  seed: number;
  targetFraction: number;
  targetMacs: number;
  macsBefore: number;
  macsAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  accuracyBefore: number;
  accuracyAfter: number;
  /** Accuracy of the fine-tuned masked training-time model; equals accuracyAfter up to float noise. */
  accuracyMasked: number;
  reparamMaxAbsDiff: number;
  epochs: { pretrain: number; search: number; finetune: number };
  wallSeconds: number;
  deployedModel: string;
  searchedCheckpoint: string;
  layers: GroupWidth[];
}
