/**
 * What the engine reports about a model and a finished search: plain data, written to report.json
 * and sent as they are in the worker protocol (src/shared/workerProtocol.ts re-exports them).
 */
import type { BackendName, PruneMethod } from '../shared/workerProtocol';
import type { MacsFormulaTerm, RoundTo } from './budgetPreview';

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
  /** Channel groups a conv or dense layer produces that are held at full width, each with why. */
  fixedGroups?: Array<{ name: string; width: number; layers: string[]; reason: string }>;
  /** Layers of classes PaS has no rule for (loaded by TF.js, opaque to PaS), with their output shape. */
  unknownLayers?: Array<{ name: string; type: string; outputShape: number[] }>;
  /** Multi-branch blocks left unfused in the deployed form because a fusion would not be exact. */
  unfusedBlocks?: Array<{ block: string; reason: string }>;
  /** Measured latency of the deployed form (`pas inspect --latency`). */
  latency?: LatencyReport;
  /**
   * The deployed model's MACs as a function of the groups' kept counts (group names in the terms):
   * enough to preview a budget under width constraints without the engine (budgetPreview.ts).
   */
  macsFormula?: MacsFormulaTerm[];
}

/** Median wall time of forward passes on one backend (src/engine/latency.ts explains the method). */
export interface LatencyReport {
  backend: string;
  batch: number;
  warmup: number;
  runs: number;
  /** Median of the whole model's forward pass, ms. */
  medianMs: number;
  /** Median of each layer's own forward pass on recorded inputs, ms, in model order. */
  perLayer: Array<{ name: string; type: string; medianMs: number }>;
}

/** One prunable group's width, as the search moves it. */
export interface GroupWidth {
  name: string;
  originalWidth: number;
  searchedWidth: number;
  /** The narrowest width the width constraints allow (--min-keep, --round-to); absent without constraints. */
  minWidth?: number;
  /**
   * The step between the widths the group may keep below its full width (1: any count): `--round-to
   * N` gives N, `auto` 8 from 64 channels and 1 below; absent for a group held at full width.
   */
  roundingStep?: number;
  /** True for a group held at full width (--keep). */
  fixed?: boolean;
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
  /**
   * The deployed model against the original (unpruned) model on the test images: `top1-agreement`
   * (share of examples with the same top-1 class) for classifiers, `psnr-db` for dense outputs
   * (null in JSON when the outputs are identical: an infinite PSNR).
   */
  fidelity?: { metric: 'top1-agreement' | 'psnr-db'; value: number | null };
  /** True when the run learned from the original model's outputs (--distill, or unlabelled images). */
  distilled?: boolean;
  /** False when the data had no labels: every accuracy above is then top-1 agreement with the original model. */
  labelled?: boolean;
  /** The optimization batch and the micro-batch each forward/backward pass used (gradient accumulation). */
  batchSize?: number;
  microBatch?: number;
  /** How pixels became input values: value = ((pixel / 255) * (hi - lo) + lo - mean[c]) / std[c], [lo, hi] = inputRange. */
  preprocessing?: { source: 'options' | 'data-statistics'; inputRange: string; mean: number[]; std: number[] };
  /**
   * MACs of the masks when the search ended, before the projection onto the budget, as a fraction
   * of the full deployed MACs (PaS only): how far the budget loss itself got.
   */
  searchEndMacsFraction?: number;
  /** Channels the projection onto the budget (and the width constraints) moved after the search. */
  projectionMoved?: number;
  /**
   * The width constraints the run respected: `roundTo` is the rule as given (a number, or 'auto',
   * which picks a step per group: each layer's `roundingStep`).
   */
  constraints?: { minKeep: number; roundTo: RoundTo; keep: string[] };
  /** Median latency at batch 1, ms, same backend: the unpruned model's deployed form, and the pruned deployed model. */
  latencyBefore?: number;
  latencyAfter?: number;
  /** Per-layer medians (ms) of both, joined by layer name: where the time is, and what pruning bought. */
  latencyLayers?: Array<{ name: string; type: string; beforeMs: number; afterMs?: number }>;
}
