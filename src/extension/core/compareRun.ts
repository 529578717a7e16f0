/**
 * "Compare with baselines" of a finished search, without VS Code: the baselines of the method
 * table run as worker processes one after another, with the finished run's model, data, target,
 * seed and the same weight-training epochs (src/engine/compare), into one folder beside the run;
 * then compare.json is written there. The finished run is the row of its own method, so it is not
 * run again. Cancel stops the running worker (SIGINT: it stops at the next batch) and starts no
 * other; a cancelled or failed comparison writes no compare.json.
 */
import type { CompareMethodProgress, CompareState } from '../../shared/webviewProtocol';
import type { PruneMethod, SearchReport, WorkerEvent } from '../../shared/workerProtocol';
import { comparePlan, runComparison, type CompareResult, type StepOutcome } from '../../engine/compare/compare';
import { PRUNE_METHOD_NAMES } from '../../engine/search/methodKinds';
import { buildSearchArgs, type SearchOptions } from './cliArgs';
import type { WorkerCallbacks, WorkerRun } from './workerRunner';

/** Starts `cli <args>` as a worker: WorkerHost.start in the extension, a fake worker in tests. */
export type StartWorker = (args: string[], callbacks: WorkerCallbacks) => WorkerRun;

export interface FinishedRun {
  /** The options the run was started with (its model, data, target, backend, constraints...). */
  options: SearchOptions;
  report: SearchReport;
  outputDir: string;
}

/**
 * The options of one baseline run: the finished run's, with its seed and pretraining made explicit
 * (so a changed CLI default cannot make the runs differ), the method's epochs, and its own folder.
 */
export function baselineOptions(finished: FinishedRun, method: PruneMethod, epochs: { searchEpochs: number; finetuneEpochs: number }, outDir: string): SearchOptions {
  const { resume: _resume, ...base } = finished.options;
  return {
    ...base,
    method,
    seed: finished.report.seed,
    pretrainEpochs: finished.report.epochs.pretrain,
    searchEpochs: epochs.searchEpochs,
    finetuneEpochs: epochs.finetuneEpochs,
    outDir,
  };
}

export class CompareRun {
  private cancelRequested = false;
  private current: WorkerRun | undefined;
  private readonly methods: CompareMethodProgress[];
  private status: CompareState['status'] = 'running';
  private result: Pick<CompareState, 'compare' | 'failure'> = {};

  constructor(
    private readonly finished: FinishedRun,
    readonly compareDir: string,
    private readonly startWorker: StartWorker,
    /** Called on every change with the full state (the panel throttles nothing: it is small). */
    private readonly onChange: (state: CompareState) => void = () => {},
  ) {
    const own = finished.report.method;
    const { search, finetune } = finished.report.epochs;
    this.methods = [
      { method: own, state: 'done', outputDir: finished.outputDir, searchEpochs: search, finetuneEpochs: finetune },
      ...this.steps.map((s) => ({ method: s.method, state: 'waiting' as const, outputDir: s.outputDir, searchEpochs: s.searchEpochs, finetuneEpochs: s.finetuneEpochs })),
    ];
  }

  /** The runs still to do: every method of the table but the finished run's own. */
  get steps() {
    const { search, finetune } = this.finished.report.epochs;
    return comparePlan(this.compareDir, search, finetune, PRUNE_METHOD_NAMES.filter((m) => m !== this.finished.report.method));
  }

  get state(): CompareState {
    return { status: this.status, compareDir: this.compareDir, methods: this.methods.map((m) => ({ ...m })), ...this.result };
  }

  get running(): boolean {
    return this.status === 'running';
  }

  /** Runs the baselines, then writes compare.json; resolves with the final state. Call once. */
  async run(): Promise<CompareState> {
    const earlier: CompareResult[] = [{ method: this.finished.report.method, report: this.finished.report, outputDir: this.finished.outputDir }];
    try {
      const outcome = await runComparison(this.compareDir, this.steps, {
        cancelled: () => this.cancelRequested,
        runOne: (step, index) => this.runOne(baselineOptions(this.finished, step.method, step, step.outputDir), index + 1),
      }, earlier);
      if (outcome.kind === 'done') {
        this.status = 'done';
        this.result = { compare: outcome.compare };
      } else if (outcome.kind === 'cancelled') {
        this.status = 'cancelled';
        for (const m of this.methods) if (m.state === 'waiting') m.state = 'cancelled';
      } else {
        this.status = 'failed';
        this.result = { failure: `${outcome.method}: ${outcome.reason}` };
      }
    } catch (e) {
      this.status = 'failed';
      this.result = { failure: (e as Error).message };
    }
    this.changed();
    return this.state;
  }

  /** Stops the running baseline (it ends at its next batch) and starts no other. */
  cancel(): void {
    if (!this.running) return;
    this.cancelRequested = true;
    this.current?.cancel();
  }

  /** Kills the running worker at once (the panel and the extension are going away). */
  kill(): void {
    this.cancelRequested = true;
    this.current?.kill();
  }

  private async runOne(options: SearchOptions, row: number): Promise<StepOutcome> {
    const progress = this.methods[row];
    progress.state = 'running';
    progress.detail = 'starting…';
    this.changed();
    let args: string[];
    try {
      args = buildSearchArgs(options);
    } catch (e) {
      return this.ended(progress, { kind: 'failed', reason: (e as Error).message });
    }
    const run = this.startWorker(args, { onEvent: (event) => this.onWorkerEvent(progress, event) });
    this.current = run;
    // a cancel that came while the worker was being started
    if (this.cancelRequested) run.cancel();
    const outcome = await run.outcome;
    this.current = undefined;
    switch (outcome.kind) {
      case 'done':
        if (!outcome.event.report) return this.ended(progress, { kind: 'failed', reason: 'the worker reported no result' });
        return this.ended(progress, { kind: 'done', report: outcome.event.report, outputDir: outcome.event.outputDir ?? options.outDir });
      case 'cancelled':
        return this.ended(progress, { kind: 'cancelled' });
      case 'error':
        return this.ended(progress, { kind: 'failed', reason: outcome.event.message + (outcome.event.file ? ` (${outcome.event.file})` : '') });
      default:
        return this.ended(progress, { kind: 'failed', reason: outcome.reason });
    }
  }

  private ended(progress: CompareMethodProgress, outcome: StepOutcome): StepOutcome {
    progress.state = outcome.kind;
    if (outcome.kind === 'done') progress.outputDir = outcome.outputDir ?? progress.outputDir;
    progress.detail = outcome.kind === 'failed' ? outcome.reason : undefined;
    this.changed();
    return outcome;
  }

  private onWorkerEvent(progress: CompareMethodProgress, event: WorkerEvent): void {
    const detail = describeStep(event);
    if (detail === undefined || detail === progress.detail) return;
    progress.detail = detail;
    // batches come up to 4 per second: fine for a state this small
    this.changed();
  }

  private changed(): void {
    this.onChange(this.state);
  }
}

/** The progress line of one baseline run. */
function describeStep(event: WorkerEvent): string | undefined {
  switch (event.type) {
    case 'phase':
      return `${event.phase}…`;
    case 'batch':
      return `${event.phase} epoch ${event.epoch} · batch ${event.batch}/${event.batches}`;
    case 'epoch':
      return `${event.phase} epoch ${event.epoch}/${event.epochs} · val accuracy ${(100 * event.valAccuracy).toFixed(1)}%`;
    default:
      return undefined;
  }
}
