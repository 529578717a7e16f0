import { SingleBar } from 'cli-progress';
import * as fs from 'fs';
import * as path from 'path';
import type { BackendName, PruneMethod, SearchReport, WorkerEvent } from '../../shared/workerProtocol';
import { PasInputError } from '../../engine/errors';
import { isBuiltinSpec } from '../../engine/zoo/builtins';
import { assertOutsideModelFolder, defaultOutputDir } from '../../engine/outputPaths';
import { runSearchJob } from '../../engine/search/job';
import { fitBuiltinToData } from '../../engine/search/fitToData';
import { parseNormalize, type InputRange } from '../../engine/data';
import { methodSearches } from '../../engine/search/methods';
import type { LearningRateSchedule } from '../../engine/search/learningRateSchedule';
import { DEFAULT_WIDTH_CONSTRAINTS, type RoundTo } from '../../engine/search/widthConstraints';
import { holdsOnlyRunLeftovers, readRunState, RunSettings } from '../../engine/search/runState';
import { describeFsError } from '../../engine/io/fsErrors';
import { formatCount, formatTable, Output } from '../output';
import { builtinOptionsFrom, ModelOptions } from '../options';
import type { DeployedFormat } from '../../engine/onnx/saveDeployed';
import { resolveWorkers, type WorkersChoice } from '../../engine/train/parallel/workerCount';
import { percentChange } from '../../engine/latency';

export interface SearchCliOptions extends ModelOptions {
  data: string;
  targetMacs: number;
  searchEpochs: number;
  finetuneEpochs: number;
  pretrainEpochs?: number;
  method: PruneMethod;
  out?: string;
  resume?: string;
  seed: number;
  batchSize: number;
  alpha: number;
  /** Spread of PaS's latent importance prior (--latent-prior). */
  latentPrior?: number;
  /** --lr-schedule. */
  lrSchedule?: LearningRateSchedule;
  maxTrain?: number;
  maxTest?: number;
  format?: DeployedFormat;
  maxSteps?: number;
  microBatch?: number;
  distill?: boolean;
  inputRange?: InputRange;
  /** The raw --normalize text (MEAN,STD or per-channel means then stds). */
  normalize?: string;
  minKeep?: number;
  roundTo?: RoundTo;
  keep?: string[];
  /** Training threads (data parallelism); 'auto' = one per core on wasm. */
  workers?: WorkersChoice;
}

/** Exit code of a run stopped by Ctrl-C / SIGTERM after its last checkpoint (the shell's 128 + SIGINT). */
export const EXIT_CANCELLED = 130;

/** Epochs a builtin (untrained) model is trained for before the search, unless --pretrain-epochs says otherwise. */
export const DEFAULT_BUILTIN_PRETRAIN_EPOCHS = 6;

export function settingsFrom(modelSpec: string, options: SearchCliOptions): RunSettings {
  return {
    modelSpec: isBuiltinSpec(modelSpec) ? modelSpec : path.resolve(modelSpec),
    builtinOptions: builtinOptionsFrom(options),
    dataSpec: options.data,
    targetFraction: options.targetMacs,
    method: options.method,
    pretrainEpochs: options.pretrainEpochs ?? (isBuiltinSpec(modelSpec) ? DEFAULT_BUILTIN_PRETRAIN_EPOCHS : 0),
    searchEpochs: options.searchEpochs,
    finetuneEpochs: options.finetuneEpochs,
    batchSize: options.batchSize,
    seed: options.seed,
    alpha: options.alpha,
    ...(options.latentPrior !== undefined ? { latentPrior: options.latentPrior } : {}),
    ...(options.lrSchedule !== undefined ? { learningRateSchedule: options.lrSchedule } : {}),
    learningRates: { pretrain: 0.1, search: 0.02, finetune: 0.02 },
    maxTrain: options.maxTrain,
    maxTest: options.maxTest,
    ...(options.format ? { deployedFormat: options.format } : {}),
    maxSteps: options.maxSteps,
    microBatch: options.microBatch,
    distill: options.distill === true,
    preprocessing: options.inputRange || options.normalize ? { inputRange: options.inputRange, normalize: options.normalize ? parseNormalize(options.normalize) : undefined } : undefined,
    constraints: {
      minKeep: options.minKeep ?? DEFAULT_WIDTH_CONSTRAINTS.minKeep,
      roundTo: options.roundTo ?? DEFAULT_WIDTH_CONSTRAINTS.roundTo,
      keep: options.keep ?? [],
    },
  };
}

export async function runSearch(modelSpec: string | undefined, options: SearchCliOptions, backend: BackendName, output: Output): Promise<number> {
  let settings: RunSettings;
  let outDir: string;
  let notes: string[] = [];
  if (options.resume) {
    outDir = path.resolve(options.resume);
    settings = readRunState(outDir).settings;
    if (options.microBatch !== undefined) settings = { ...settings, microBatch: options.microBatch };
  } else {
    if (!modelSpec) throw new PasInputError('a model is required (a model.json path or builtin:NAME), or --resume DIR');
    const fitted = await fitBuiltinToData(settingsFrom(modelSpec, options));
    settings = fitted.settings;
    notes = fitted.notes;
    const modelFile = isBuiltinSpec(modelSpec) ? undefined : resolveModelJson(settings.modelSpec);
    const suffix = `pas-${settings.method}-${Math.round(settings.targetFraction * 100)}`;
    outDir = path.resolve(options.out ?? defaultOutputDir(modelFile, modelSpec, suffix));
    assertOutsideModelFolder(outDir, modelFile);
    if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) {
      throw new PasInputError('the output path exists and is not a folder; pass another --out', outDir);
    }
    assertWritableParent(outDir);
    if (methodSearches(settings.method) && settings.searchEpochs === 0) {
      // Without a search epoch the masks are never projected onto the budget: the target would be ignored.
      throw new PasInputError('--search-epochs 0 skips the PaS search and would ignore --target-macs; use at least 1, or --method uniform or magnitude');
    }
  }
  // Taken before the (slow) model and data checks, so that a second run on this folder is refused
  // at once instead of interleaving its checkpoints with ours; released when this run ends.
  const lock = acquireOutputLock(outDir, !options.resume);
  try {
    return await runLockedSearch(settings, outDir, !!options.resume, backend, output, notes, resolveWorkers(options.workers, backend));
  } catch (error) {
    lock.abandonIfUnused();
    throw error;
  } finally {
    lock.release();
  }
}

async function runLockedSearch(settings: RunSettings, outDir: string, resume: boolean, backend: BackendName, output: Output, notes: string[], workers: number): Promise<number> {
  output.start('search', settings.modelSpec, { backend, seed: settings.seed });
  // Said with the other notes once the run is accepted: a refused run prints its one error line only.
  if (workers > 1) notes = [...notes, `training threads: ${workers} (each batch split over ${workers} model replicas)`];

  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) process.exit(EXIT_CANCELLED); // A second Ctrl-C does not wait for the batch.
    stopRequested = true;
    output.note('pas: stopping after the current batch (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const display = new ProgressDisplay(output);
  try {
    const outcome = await runSearchJob(
      { settings, outDir, resume, backend, notes, workers },
      { emit: (event) => { output.event(event); display.handle(event); }, shouldStop: () => stopRequested },
    );
    display.stop();
    if (outcome.status === 'cancelled') {
      output.event({ type: 'cancelled', checkpoint: outcome.checkpoint });
      output.note(`pas: stopped; resume with: pas search --resume ${outDir}`);
      return EXIT_CANCELLED;
    }
    output.event({ type: 'done', report: outcome.report, outputDir: outDir });
    printSummary(outcome.report, outDir, output);
    return 0;
  } finally {
    display.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Name of the lock file a running search keeps in its output folder. */
export const OUTPUT_LOCK_FILE = '.lock';

interface OutputLock {
  release(): void;
  /** Removes the output folder again when this run created it and wrote nothing else into it. */
  abandonIfUnused(): void;
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in a lock file, or undefined when it is unreadable (being written, or garbage). */
function lockOwner(lockFile: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates `outDir/.lock` holding this pid with O_EXCL, so that two searches (or a search and a
 * resume) on one folder cannot interleave their checkpoints. A lock whose pid is dead (a run
 * killed with SIGKILL) is stale and taken over. The lock is removed at exit, also on
 * process.exit (a second Ctrl-C).
 */
function acquireOutputLock(outDir: string, newRun: boolean): OutputLock {
  const lockFile = path.join(outDir, OUTPUT_LOCK_FILE);
  let createdDir: string | undefined;
  try {
    createdDir = fs.mkdirSync(outDir, { recursive: true });
  } catch (error) {
    throw new PasInputError(`cannot create the output folder: ${describeFsError(error)}`, outDir);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(lockFile, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        if (createdDir) fs.rmSync(createdDir, { recursive: true, force: true });
        throw new PasInputError(`cannot create the lock file: ${describeFsError(error)}`, lockFile);
      }
      const owner = lockOwner(lockFile);
      // An unreadable lock may be one being written this instant: it counts as live once.
      if ((owner === undefined && attempt === 0) || (owner !== undefined && isProcessAlive(owner)) || attempt >= 2) {
        throw new PasInputError(`another pas search${owner !== undefined ? ` (pid ${owner})` : ''} is using this output folder; wait for it, or pass another --out`, outDir);
      }
      fs.rmSync(lockFile, { force: true });
    }
  }
  if (newRun) {
    // Checked again under the lock: a folder filled by a run that started meanwhile is not ours.
    if (!holdsOnlyRunLeftovers(outDir, [OUTPUT_LOCK_FILE])) {
      fs.rmSync(lockFile, { force: true });
      throw new PasInputError('output folder already exists and is not empty; pass another --out, or --resume it', outDir);
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    if (lockOwner(lockFile) === process.pid) fs.rmSync(lockFile, { force: true });
  };
  process.on('exit', release);
  return {
    release,
    abandonIfUnused() {
      release();
      if (!createdDir) return;
      // Only when nothing but (now removed) lock was written: rmdir refuses a non-empty folder.
      for (let dir = outDir; ; dir = path.dirname(dir)) {
        try {
          fs.rmdirSync(dir);
        } catch {
          break;
        }
        if (dir === createdDir) break;
      }
    },
  };
}

function resolveModelJson(spec: string): string {
  return spec.endsWith('.json') || spec.toLowerCase().endsWith('.onnx') ? spec : path.join(spec, 'model.json');
}

/** An output folder must be creatable: its nearest existing ancestor is a writable folder. */
function assertWritableParent(outDir: string): void {
  let dir = path.dirname(outDir);
  while (!fs.existsSync(dir)) dir = path.dirname(dir);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    if (!fs.statSync(dir).isDirectory()) throw new Error('not a folder');
  } catch (error) {
    throw new PasInputError(`cannot create the output folder here: ${dir} is not a writable folder`, outDir);
  }
}

/** Terminal progress: a bar per epoch on stderr, a line per finished epoch. */
class ProgressDisplay {
  private bar: SingleBar | null = null;
  private target = 0;
  private original = 0;

  constructor(private readonly output: Output) {}

  handle(event: WorkerEvent): void {
    if (this.output.json) return;
    switch (event.type) {
      case 'model':
        this.target = event.macsTarget;
        this.original = event.macsOriginal;
        this.output.note(`MACs: ${formatCount(event.macsOriginal)} deployed, target ${formatCount(event.macsTarget)}; ${event.groups.length} prunable layers`);
        break;
      case 'estimate':
        this.output.note(
          `estimate: ${event.imagesPerSecond.toFixed(1)} img/s training on ${event.backend} (batch ${event.batchSize}, micro-batch ${event.microBatch}); ` +
            `${event.epochs} epoch(s) x ${event.trainImages} images: about ${formatDuration(event.seconds)}`,
        );
        break;
      case 'log':
        this.output.note(event.message);
        break;
      case 'phase':
        if (event.epochs > 0) this.output.note(`== ${event.phase}: ${event.epochs} epoch(s)`);
        else this.output.note(`== ${event.phase}`);
        break;
      case 'batch':
        if (!this.bar) {
          this.bar = new SingleBar({
            format: `${event.phase} {epoch} [{bar}] {value}/{total} | loss {loss} acc {acc}{macs} | {speed} img/s | ETA {eta_formatted}`,
            stream: process.stderr,
            hideCursor: false,
            clearOnComplete: true,
            barsize: 20,
          });
          this.bar.start(event.batches, 0);
        }
        this.bar.update(event.batch, {
          epoch: event.epoch,
          loss: event.loss.toFixed(3),
          acc: event.accuracy.toFixed(3),
          macs: event.macs > 0 ? ` | MACs ${formatCount(event.macs)}/${formatCount(this.target)}` : '',
          speed: event.imagesPerSecond !== undefined ? event.imagesPerSecond.toFixed(1) : '-',
        });
        // The bar's own ETA covers this epoch; the event's covers the phase.
        (this.bar as any).eta.eta = Math.round(event.etaSeconds);
        break;
      case 'epoch': {
        this.stop();
        const macs = event.macs > 0 ? `  MACs ${formatCount(event.macs)} (${((100 * event.macs) / this.original).toFixed(1)}%, target ${((100 * this.target) / this.original).toFixed(1)}%)` : '';
        this.output.note(`${event.phase} epoch ${event.epoch}/${event.epochs}: loss ${event.loss.toFixed(4)}  train acc ${event.accuracy.toFixed(4)}  val acc ${event.valAccuracy.toFixed(4)}${macs}${event.imagesPerSecond !== undefined ? `  ${event.imagesPerSecond.toFixed(1)} img/s` : ''}`);
        break;
      }
      default:
        break;
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'unknown';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function printSummary(report: SearchReport, outDir: string, output: Output): void {
  output.text();
  output.text(formatTable(
    ['layer', 'original width', 'searched width', 'kept'],
    report.layers.map((l) => [l.name, l.originalWidth, l.searchedWidth, `${((100 * l.searchedWidth) / l.originalWidth).toFixed(0)}%`]),
  ));
  output.text();
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  output.text(formatTable(['', 'before', 'after'], [
    ['MACs (deployed)', report.macsBefore, report.macsAfter],
    ['params (deployed)', report.paramsBefore, report.paramsAfter],
    [report.labelled === false ? 'test top-1 agreement with the original' : 'test accuracy', pct(report.accuracyBefore), pct(report.accuracyAfter)],
  ]));
  if (report.fidelity) {
    const value = report.fidelity.value === null ? 'identical outputs' : report.fidelity.metric === 'psnr-db' ? `${report.fidelity.value.toFixed(2)} dB PSNR` : `${pct(report.fidelity.value)} top-1 agreement`;
    output.text(`fidelity of the deployed model to the original on the test images: ${value}${report.distilled ? ' (learned by distillation)' : ''}`);
  }
  output.text();
  output.text(`MACs ${pct(report.macsAfter / report.macsBefore)} of the original (target ${pct(report.targetFraction)}); method ${report.method}; backend ${report.backend}; seed ${report.seed}; ${report.wallSeconds.toFixed(0)} s`);
  if (report.searchEndMacsFraction !== undefined) {
    output.text(`search: the masks ended at ${pct(report.searchEndMacsFraction)} of the MACs (target ${pct(report.targetFraction)}); the projection onto the budget then moved ${report.projectionMoved ?? 0} channel(s)`);
  }
  printLatency(report, output);
  output.text(`deployed vs fine-tuned masked model: max abs diff ${report.reparamMaxAbsDiff.toExponential(2)}, accuracy ${pct(report.accuracyMasked)} -> ${pct(report.accuracyAfter)}`);
  output.text(`outputs: ${outDir} (${path.relative(outDir, report.deployedModel)}, searched/model.json, report.json)`);
}

/** "MACs -50%, latency -X%", and where the time went when the two are far apart. */
function printLatency(report: SearchReport, output: Output): void {
  if (report.latencyBefore === undefined || report.latencyAfter === undefined) return;
  output.text(
    `MACs ${percentChange(report.macsBefore, report.macsAfter)}, latency ${percentChange(report.latencyBefore, report.latencyAfter)} ` +
      `(${report.latencyBefore.toFixed(2)} -> ${report.latencyAfter.toFixed(2)} ms per image, median at batch 1, ${report.backend})`,
  );
  const latencyRatio = report.latencyAfter / report.latencyBefore;
  const macsRatio = report.macsAfter / report.macsBefore;
  if (Math.max(latencyRatio / macsRatio, macsRatio / latencyRatio) <= 1.2 || !report.latencyLayers) return;
  const slowest = [...report.latencyLayers].filter((l) => l.afterMs !== undefined).sort((a, b) => b.afterMs! - a.afterMs!).slice(0, 4);
  output.text(
    `latency and MACs ratios differ by more than 1.2x; the layers that hold the time after pruning: ` +
      slowest.map((l) => `${l.name} (${l.type}) ${l.beforeMs.toFixed(3)} -> ${l.afterMs!.toFixed(3)} ms`).join(', ') +
      ' (full profile: latencyLayers in report.json)',
  );
}
