/**
 * One search run: the worker process, the host-owned event history, the process-level status,
 * and a notification with a cancel button while it runs. Panels subscribe to it; the session
 * outlives them (closing the panel does not stop the search, the notification and the
 * `PaS: Cancel Search` command do).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { RunStatus, SearchRunInfo } from '../shared/webviewProtocol';
import type { DoneEvent, SearchReport, WorkerEvent } from '../shared/workerProtocol';
import { buildSearchArgs, type SearchOptions } from './core/cliArgs';
import { SearchHistory } from './core/searchHistory';
import type { WorkerOutcome, WorkerRun } from './core/workerRunner';
import { Disposable } from './dispose';
import type { WorkerHost } from './workerHost';

export class SearchSession extends Disposable {
  readonly history = new SearchHistory();
  status: RunStatus = 'running';
  failure?: string;
  done?: DoneEvent;
  private run: WorkerRun | undefined;
  private readonly onEventEmitter = this._register(new vscode.EventEmitter<WorkerEvent>());
  private readonly onStatusEmitter = this._register(new vscode.EventEmitter<RunStatus>());
  /** Every worker event, in order (already appended to `history`). */
  readonly onEvent = this.onEventEmitter.event;
  /** The process-level status changed. */
  readonly onStatus = this.onStatusEmitter.event;
  /** Settles when the worker has ended (after `start`). */
  readonly finished: Promise<WorkerOutcome>;
  private resolveFinished!: (outcome: WorkerOutcome) => void;

  /** A run that has not started: subscribe to its events, then call `start`. */
  constructor(readonly key: string, readonly info: SearchRunInfo, readonly options: SearchOptions, private readonly host: WorkerHost) {
    super();
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  /** Spawns the worker (once). */
  start(): this {
    if (this.run) throw new Error('this search session has already started');
    this.run = this.host.start(buildSearchArgs(this.options), {
      onEvent: (event) => {
        this.history.append(event);
        if (event.type === 'done') this.done = event;
        this.onEventEmitter.fire(event);
      },
    }, { cancelGraceMs: 60_000 });
    this._register({ dispose: () => this.run?.kill() });
    void this.run.outcome.then((outcome) => {
      switch (outcome.kind) {
        case 'done':
          this.setStatus('done');
          break;
        case 'cancelled':
          this.setStatus('cancelled');
          break;
        case 'error':
          this.setStatus('failed', outcome.event.message);
          break;
        case 'crashed':
        case 'timeout':
        case 'spawnFailed':
          this.setStatus('failed', outcome.reason);
          break;
      }
      this.resolveFinished(outcome);
    });
    return this;
  }

  get running(): boolean {
    return this.status === 'running';
  }

  get report(): SearchReport | undefined {
    return this.done?.report;
  }

  /** The output folder the worker reported, or the one the host asked for. */
  get outputDir(): string {
    return this.done?.outputDir ?? this.info.outputDir;
  }

  /** report.json of a finished run, when it exists. */
  get reportPath(): string | undefined {
    const p = path.join(this.outputDir, 'report.json');
    return fs.existsSync(p) ? p : undefined;
  }

  get deployedModelPath(): string | undefined {
    const p = this.report?.deployedModel;
    if (!p) return undefined;
    const abs = path.isAbsolute(p) ? p : path.join(this.outputDir, p);
    return fs.existsSync(abs) ? abs : undefined;
  }

  cancel(): void {
    this.run?.cancel();
  }

  private setStatus(status: RunStatus, failure?: string): void {
    this.status = status;
    this.failure = failure;
    if (!this.isDisposed) this.onStatusEmitter.fire(status);
  }
}
