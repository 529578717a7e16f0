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
import type { MacsFormulaTerm } from '../engine/budgetPreview';
import type { CompareReport } from '../engine/compare/compare';
import type { RunSetup, SetupField } from './runSetup';
import type { ModelReport, PruneMethod, WorkerEvent } from './workerProtocol';

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
  /** "Compare with baselines" of this run, when one was started (absent from an older host). */
  compare?: CompareState;
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

/** What the setup form knows about the model (from `pas inspect --json`), for the group list and the budget preview. */
export interface SetupModelInfo {
  groups: Array<{ name: string; width: number; layers: string[] }>;
  deployedMacs: number;
  /** Absent from an older CLI: the form then shows no lowest reachable fraction. */
  macsFormula?: MacsFormulaTerm[];
}

/**
 * Full state of a search panel that shows the run-setup form ("Prune with PaS"). Sent on `ready`
 * and again whenever the host's side changes (inspection finished, a folder was browsed, Start
 * was refused); the form's own edits reach the host as `setupChanged`, so a snapshot never loses them.
 */
export interface SetupInitMessage {
  type: 'init';
  view: 'setup';
  protocol: number;
  model: string;
  label: string;
  setup: RunSetup;
  inspection: { kind: 'loading' } | { kind: 'ready'; model: SetupModelInfo } | { kind: 'error'; message: string };
  /** Why the host refused the last Start, per field. */
  errors?: Partial<Record<SetupField, string>>;
}

/** One method's run in a comparison, as the panel shows it. */
export interface CompareMethodProgress {
  method: PruneMethod;
  state: 'waiting' | 'running' | 'done' | 'cancelled' | 'failed';
  /** Where the run writes (the finished run's own folder for the method it used). */
  outputDir: string;
  searchEpochs: number;
  finetuneEpochs: number;
  /** The latest progress line while it runs ("finetune epoch 2/4 · batch 3/10"), or why it failed. */
  detail?: string;
}

/** "Compare with baselines" of a finished run: the runs one after another, then compare.json. */
export interface CompareState {
  status: 'running' | 'done' | 'cancelled' | 'failed';
  /** The folder holding one subfolder per baseline and compare.json. */
  compareDir: string;
  methods: CompareMethodProgress[];
  /** compare.json's content, once every run has finished. */
  compare?: CompareReport;
  failure?: string;
}

/** The comparison of this panel's run changed (a full state: it is small). */
export interface CompareMessage {
  type: 'compare';
  state: CompareState;
}

export type HostToWebviewMessage = SearchInitMessage | InspectorInitMessage | SetupInitMessage | EventMessage | StatusMessage | CompareMessage;

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

/** Run "PaS: Set Up Native Backend" (offered while a search runs on wasm). */
export interface SetUpNativeBackendMessage {
  type: 'setUpNativeBackend';
}

/** The setup form changed (unvalidated: the host validates on Start). */
export interface SetupChangedMessage {
  type: 'setupChanged';
  setup: unknown;
}

/** Pick a data folder with the host's folder dialog; the answer comes back as a new `init`. */
export interface BrowseDataMessage {
  type: 'browseData';
  kind: 'idx' | 'folder';
}

/** Start the search the form describes; the panel then turns into its live view. */
export interface StartRunMessage {
  type: 'startRun';
  setup: unknown;
}

/** Run the baselines of the method table with this finished run's settings and compare (#11 item 5). */
export interface CompareBaselinesMessage {
  type: 'compareBaselines';
}

/** Stop the comparison: the running baseline is cancelled and the next one does not start. */
export interface CancelCompareMessage {
  type: 'cancelCompare';
}

export type WebviewToHostMessage = CompareBaselinesMessage | CancelCompareMessage | ReadyMessage | CancelMessage | ReparameterizeMessage | StartSearchMessage | OpenMessage | SetupChangedMessage | BrowseDataMessage | StartRunMessage | SetUpNativeBackendMessage | MeasureLatencyMessage;

export const OPEN_TARGETS: readonly OpenTarget[] = ['report', 'deployedModel', 'outputFolder', 'log'];
