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

// The engine's domain types travel on the wire as they are: one definition, in the engine.
export type { GroupWidth, LatencyReport, LayerRow, ModelFormSummary, ModelReport, SearchReport } from '../engine/reports';
import type { GroupWidth, ModelReport, SearchReport } from '../engine/reports';

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
  /** Deployed MACs of the current masks; 0 while pretraining (no masks yet). */
  macs: number;
  /** Params of the model the current masks deploy (pruned and reparameterized; unpruned while pretraining). */
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
  /** Multi-branch blocks left unfused because a fusion would not be exact (absent or empty: all fused). */
  unfusedBlocks?: Array<{ block: string; reason: string }>;
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
