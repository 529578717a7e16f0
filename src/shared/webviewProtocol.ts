/**
 * The host <-> webview protocol of the PaS panel and the model inspector.
 *
 * Pure types (plus the list of message types each side accepts), no runtime dependency on
 * `vscode` or the DOM, so the host, the webview bundle and the unit tests all import it.
 *
 * Flow (handshake, snapshot, deltas): the webview posts `ready` once its script has loaded; the
 * host answers with a full snapshot (`init`, carrying the whole event history of the search, or
 * the inspect report), then sends increments (`event`, one or a few worker events at a time).
 * When a hidden panel is shown again VS Code reloads its page, the webview posts `ready` again
 * and gets a fresh snapshot: the host owns the history, the webview never needs
 * `retainContextWhenHidden`.
 */
import type { ModelReport, WorkerEvent } from './workerProtocol';

/** Bumped when a message changes shape; the webview shows a notice on a mismatch. */
export const WEBVIEW_PROTOCOL_VERSION = 1;

/** Worker events the search panel renders. `batch` events are compacted by the host history. */
export type PanelEvent = WorkerEvent;

/** What the panel knows about the run besides the worker's own events. */
export interface SearchRunInfo {
  /** Model path as given to the CLI (a file path or `builtin:NAME`). */
  model: string;
  /** Short label for the title, e.g. the model's folder name. */
  label: string;
  dataSpec: string;
  targetFraction: number;
  /** `pretrain` undefined: the CLI's default (6 for builtins, 0 for files). */
  epochs: { pretrain?: number; search: number; finetune: number };
  /** Where the worker writes its outputs. */
  outputDir: string;
}

/** Status of the run as the host sees it (process level, not only from worker events). */
export type RunStatus = 'running' | 'done' | 'cancelled' | 'failed';

// ---------------------------------------------------------------------------------------------
// Host -> webview

/** Full state of a search panel: the run description plus every (compacted) event so far. */
export interface SearchInitMessage {
  type: 'init';
  view: 'search';
  protocol: number;
  run: SearchRunInfo;
  status: RunStatus;
  /** Failure reason when `status` is `failed`. */
  failure?: string;
  history: PanelEvent[];
}

/** Full state of an inspector editor. */
export interface InspectorInitMessage {
  type: 'init';
  view: 'inspector';
  protocol: number;
  /** Workspace-relative or absolute path of the inspected file, for display. */
  file: string;
  state:
    | { kind: 'loading' }
    | { kind: 'report'; report: ModelReport }
    | { kind: 'error'; message: string };
  /** Whether launching a search is possible here (workspace trusted). */
  canSearch: boolean;
}

/** Appends worker events to the panel's history. */
export interface EventMessage {
  type: 'event';
  events: PanelEvent[];
}

/** The process-level status changed (exit, crash, cancel). */
export interface StatusMessage {
  type: 'status';
  status: RunStatus;
  failure?: string;
}

export type HostToWebviewMessage = SearchInitMessage | InspectorInitMessage | EventMessage | StatusMessage;

// ---------------------------------------------------------------------------------------------
// Webview -> host

/** The webview's script has loaded and wants a snapshot. */
export interface ReadyMessage {
  type: 'ready';
}

/** Stop the running search (same as the `PaS: Cancel Search` command for this panel). */
export interface CancelMessage {
  type: 'cancel';
}

/** Reparameterize the searched checkpoint (or the inspected file). */
export interface ReparameterizeMessage {
  type: 'reparameterize';
}

/** Start a search on the inspected model. */
export interface StartSearchMessage {
  type: 'startSearch';
}

/** Which output file to open; the host maps the kind to a path it knows, never a path from the webview. */
export type OpenTarget = 'report' | 'deployedModel' | 'outputFolder' | 'log';

export interface OpenMessage {
  type: 'open';
  target: OpenTarget;
}

/** Inspect the model again with its deployed form's latency measured (`pas inspect --latency`). */
export interface MeasureLatencyMessage {
  type: 'measureLatency';
}

export type WebviewToHostMessage = ReadyMessage | CancelMessage | ReparameterizeMessage | StartSearchMessage | OpenMessage | MeasureLatencyMessage;

export const OPEN_TARGETS: readonly OpenTarget[] = ['report', 'deployedModel', 'outputFolder', 'log'];
