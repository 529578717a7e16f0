/**
 * The `pas ... --json` output: one JSON object per line on stdout, each a `WorkerEvent`.
 *
 * This is the boundary between the engine (CLI / worker process) and the extension host: the
 * host spawns `node dist/cli.js <command> ... --json` and switches on `type`. Pure types, no
 * runtime imports, so both sides (and the webview) can import it.
 *
 * Versioning: every stream starts with a `start` event carrying `protocol`. Adding an optional
 * field keeps the version; renaming or removing a field, or changing its meaning, bumps it.
 */
export const WORKER_PROTOCOL_VERSION = 1;

export type BackendName = 'node-gpu' | 'node' | 'wasm' | 'cpu';
export type BackendChoice = 'auto' | BackendName;
export type PruneMethod = 'pas' | 'uniform' | 'magnitude';
export type Phase = 'pretrain' | 'search' | 'finetune' | 'prune' | 'reparameterize' | 'evaluate';

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
}

/** One prunable group's width, as the search moves it. */
export interface GroupWidth {
  name: string;
  originalWidth: number;
  searchedWidth: number;
  /** The narrowest width the width constraints allow (--min-keep, --round-to); absent without constraints. */
  minWidth?: number;
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
  /** The width constraints the run respected. */
  constraints?: { minKeep: number; roundTo: number; keep: string[] };
}

export type WorkerEvent =
  | StartEvent
  | ModelEvent
  | PhaseEvent
  | BatchEvent
  | EpochEvent
  | CheckpointEvent
  | InspectEvent
  | ReparamEvent
  | DoneEvent
  | CancelledEvent
  | ErrorEvent
  | LogEvent
  | EstimateEvent;

export interface StartEvent {
  type: 'start';
  protocol: number;
  command: 'search' | 'inspect' | 'reparam';
  model: string;
  backend?: BackendName;
  /** Why each faster backend was skipped (`--backend auto`), e.g. a native package that failed to load. */
  backendNote?: string;
  seed?: number;
  pid: number;
}

/** Snapshot of the searchable structure, sent once before training. */
export interface ModelEvent {
  type: 'model';
  groups: GroupWidth[];
  macsOriginal: number;
  macsTarget: number;
  paramsOriginal: number;
}

export interface PhaseEvent {
  type: 'phase';
  phase: Phase;
  epochs: number;
}

/** Throttled (a few per second at most). */
export interface BatchEvent {
  type: 'batch';
  phase: Phase;
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
  macs: number;
  etaSeconds: number;
  /** Training images per second so far in this epoch. */
  imagesPerSecond?: number;
}

export interface EpochEvent {
  type: 'epoch';
  phase: Phase;
  epoch: number;
  epochs: number;
  loss: number;
  accuracy: number;
  valAccuracy: number;
  macs: number;
  params: number;
  widths: number[];
  /** Live tfjs tensors in the worker after the epoch: flat across epochs unless something leaks. */
  tensors?: number;
  /** Resident memory of the worker after the epoch, in bytes. */
  rssBytes?: number;
  /** The largest resident memory the worker has had so far, in bytes. */
  peakRssBytes?: number;
  /** Training images per second over the epoch. */
  imagesPerSecond?: number;
  /** Examples per forward/backward pass in this epoch (the batch is accumulated over micro-batches). */
  microBatch?: number;
}

/**
 * Sizing, sent once before training: the speed of a few warm-up steps on the chosen backend and
 * the run time it implies (images/s x images x epochs, plus evaluation passes).
 */
export interface EstimateEvent {
  type: 'estimate';
  backend: BackendName;
  imagesPerSecond: number;
  trainImages: number;
  /** Training epochs left in this run (all phases). */
  epochs: number;
  /** Optimizer steps per epoch (bounded by --max-steps). */
  stepsPerEpoch: number;
  batchSize: number;
  microBatch: number;
  /** Estimated seconds of the remaining run. */
  seconds: number;
}

export interface CheckpointEvent {
  type: 'checkpoint';
  path: string;
  phase: Phase;
  epoch: number;
}

export interface InspectEvent {
  type: 'inspect';
  report: ModelReport;
}

export interface ReparamEvent {
  type: 'reparam';
  input: string;
  output: string;
  maxAbsDiff: number;
  macsTraining: number;
  macsDeployed: number;
  paramsDeployed: number;
}

export interface DoneEvent {
  type: 'done';
  report?: SearchReport;
  outputDir?: string;
}

/** The run stopped on SIGINT/SIGTERM after the current batch; `checkpoint` can be passed to `--resume`. */
export interface CancelledEvent {
  type: 'cancelled';
  checkpoint?: string;
}

export interface ErrorEvent {
  type: 'error';
  message: string;
  /** The file the problem is in, when there is one. */
  file?: string;
}

export interface LogEvent {
  type: 'log';
  message: string;
}
