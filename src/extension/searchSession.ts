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
import type { WorkerHost } from './workerHost';

export class SearchSession implements vscode.Disposable {
  readonly history = new SearchHistory();
  status: RunStatus = 'running';
  failure?: string;
  done?: DoneEvent;
  private run: WorkerRun | undefined;
  private readonly onEventEmitter = new vscode.EventEmitter<WorkerEvent>();
  private readonly onStatusEmitter = new vscode.EventEmitter<RunStatus>();
  /** Every worker event, in order (already appended to `history`). */
  readonly onEvent = this.onEventEmitter.event;
  /** The process-level status changed. */
  readonly onStatus = this.onStatusEmitter.event;
  readonly finished: Promise<WorkerOutcome>;

  constructor(readonly key: string, readonly info: SearchRunInfo, readonly options: SearchOptions, host: WorkerHost) {
    let resolveFinished!: (o: WorkerOutcome) => void;
    this.finished = new Promise((r) => (resolveFinished = r));
    this.run = host.start(buildSearchArgs(options), {
      onEvent: (event) => {
        this.history.append(event);
        if (event.type === 'done') this.done = event;
        this.onEventEmitter.fire(event);
      },
    }, { cancelGraceMs: 60_000 });
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
      resolveFinished(outcome);
    });
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
    this.onStatusEmitter.fire(status);
  }

  dispose(): void {
    this.run?.kill();
    this.onEventEmitter.dispose();
    this.onStatusEmitter.dispose();
  }
}
