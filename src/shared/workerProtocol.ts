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
  /** Measured latency of the deployed form (`pas inspect --latency`). */
  latency?: LatencyReport;
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
  /** Median latency at batch 1, ms, same backend: the unpruned model's deployed form, and the pruned deployed model. */
  latencyBefore?: number;
  latencyAfter?: number;
  /** Per-layer medians (ms) of both, joined by layer name: where the time is, and what pruning bought. */
  latencyLayers?: Array<{ name: string; type: string; beforeMs: number; afterMs?: number }>;
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
  | LogEvent;

export interface StartEvent {
  type: 'start';
  protocol: number;
  command: 'search' | 'inspect' | 'reparam';
  model: string;
  backend?: BackendName;
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
