/**
 * `npm run bench:quality [-- --flags]`: do PaS's searched widths beat the uniform and magnitude
 * baselines at equal MACs and EQUAL weight training, on Fashion-MNIST, beyond seed noise?
 *
 * 1. Trains `builtin:default` at `--width-multiplier` (0.5 by default: RepVGG-A0 x0.5 with
 *    [1,2,2,2,1] blocks, widths 24-96 and 640, 2.1M MACs; at the builtin's x0.25 the early layers
 *    have 12 channels and a width choice moves in steps of 8% of a layer) ONCE to a baseline on
 *    the Fashion-MNIST training split (capped by --max-train): SGD momentum 0.9, lr 0.1 cosine,
 *    batch 64, weight decay 1e-4, pad-crop + flip augmentation, the engine's own trainer. Evaluated
 *    on all 10,000 test images; saved to WORK/baseline/model.json.
 * 2. Runs the CLI (`node dist/cli.js search WORK/baseline/model.json --pretrain-epochs 0 ...`) as a
 *    child process for every method of the engine's method table, at every MACs target, for every
 *    seed. Every method gets the same weight-training epochs after the baseline: PaS
 *    `--search-epochs S --finetune-epochs F`, a `select` method (uniform, magnitude)
 *    `--finetune-epochs S+F` (quality.json: settings.epochsByMethod).
 * 3. Writes RESULTS/quality.json (a row per run, with its seed; means and standard deviations per
 *    method and target) and RESULTS/quality.md, prints the table and the target checks on the means
 *    (targets, not assertions: exit 0 whatever they say; 1 when a run crashed; 2 for missing data
 *    or bad flags).
 *
 * Flags (all optional):
 *   --baseline-epochs N   baseline training epochs (8)
 *   --search-epochs N     PaS search epochs (2)
 *   --finetune-epochs N   PaS fine-tuning epochs (2); the baselines fine-tune for search + finetune
 *   --targets LIST        MACs targets as fractions of the baseline's deployed MACs (0.5,0.3,0.2)
 *   --seeds LIST          seeds of the pruning runs (1,2,3); the baseline is trained with the first
 *   --width-multiplier X  width of builtin:default (0.5)
 *   --max-train N         cap on the training images (6000); passed to the CLI runs too
 *   --batch-size N        (64)
 *   --alpha X             PaS budget-loss weight (default: the CLI's default)
 *   --jobs N              CLI runs at once (2); wasm is single-threaded, so N <= cores helps
 *   --reuse-baseline      skip training when WORK/baseline exists and was trained with the same
 *                         settings; finished runs with the same settings are reused as well
 *   --report-only         with --reuse-baseline: train nothing, write the results of the runs
 *                         already finished in WORK (a partial table while a bench is running)
 *   --data-dir DIR        Fashion-MNIST IDX folder (/usr/share/datasets/fashion-mnist)
 *   --work-dir DIR        baseline and run folders (bench/.work)
 *   --results-dir DIR     where quality.json / quality.md go (bench/results)
 *
 * Test accuracy is always on the full 10,000-image test split (`--max-test` is never used).
 */
import { spawn } from 'child_process';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseFraction, parseLatentPrior, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber } from '../src/cli/options';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import * as tf from '@tensorflow/tfjs';
import type { PruneMethod, SearchReport, WorkerEvent } from '../src/shared/workerProtocol';
import { methodSearches, PRUNE_METHOD_NAMES } from '../src/engine/search/methods';
import { DEFAULT_LATENT_PRIOR } from '../src/engine/search/latentInit';
import { DEFAULT_LEARNING_RATE_SCHEDULE, LEARNING_RATE_SCHEDULES, type LearningRateSchedule } from '../src/engine/search/learningRateSchedule';
import { initBackend } from '../src/engine/backends';
import { defaultAugmentation, findPackageRoot, loadDataset, type Dataset } from '../src/engine/data';
import { summarizeGraph } from '../src/engine/graph/counting';
import { graphFromModel, modelFromGraph } from '../src/engine/graph/modelGraph';
import { loadLayersModelFromFile, saveLayersModelToDir, writeFileAtomic } from '../src/engine/io';
import { measureLatency, median } from '../src/engine/latency';
import { cosineLearningRate, evaluate, SGD_MOMENTUM as MOMENTUM, trainableVariables, trainEpoch, WEIGHT_DECAY } from '../src/engine/train/trainer';
import { reparameterizeGraph } from '../src/engine/transform/reparameterize';
import { buildBuiltin } from '../src/engine/zoo/builtins';

type Method = PruneMethod;
const METHODS: Method[] = PRUNE_METHOD_NAMES;
const MODEL = 'builtin:default';
const BACKEND = 'wasm';
const DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist';
const IDX_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
const TEST_IMAGES = 10000;
// Baseline recipe (the engine's pretraining recipe, run for longer).
const BASELINE_LR = 0.1;

interface Flags {
  baselineEpochs: number;
  searchEpochs: number;
  finetuneEpochs: number;
  targets: number[];
  maxTrain?: number;
  seeds: number[];
  /** Methods to run (all by default; fewer for a diagnostic). */
  methods: Method[];
  widthMultiplier: number;
  batchSize: number;
  alpha?: number;
  latentPrior?: number;
  lrSchedule?: LearningRateSchedule;
  jobs: number;
  reuseBaseline: boolean;
  reportOnly: boolean;
  dataDir: string;
  workDir: string;
  resultsDir: string;
}

interface Row {
  method: 'baseline' | Method;
  /** The MACs target as a fraction of the baseline's deployed MACs; null for the baseline. */
  targetMacs: number | null;
  /** Deployed (reparameterized, pruned) multiply-adds per image. */
  macs: number;
  /** Deployed parameters. */
  params: number;
  /** Top-1 accuracy on the 10,000 test images (deployed model). */
  accuracy: number;
  /** Width of each prunable layer, in graph order (settings.layerNames). */
  widths: number[];
  /** Wall time of the CLI run, or of the baseline training. */
  wallSeconds: number;
  /** Seed of the run (the baseline's: the seed it was trained with). */
  seed: number;
  /** Measured latency of the deployed model, batch 1, shipping backend (ms); null until the engine has a latency function. */
  latencyMs: number | null;
  /** PaS: MACs of the masks when the search ended, before the projection, / the full MACs. */
  searchEndMacsFraction?: number | null;
  projectionMoved?: number | null;
}

interface BaselineMeta {
  baselineEpochs: number;
  seed: number;
  widthMultiplier: number;
  maxTrain: number | null;
  batchSize: number;
  accuracy: number;
  trainCount: number;
  testCount: number;
  macs: number;
  params: number;
  wallSeconds: number;
  phaseSeconds: Record<string, number>;
  date: string;
}

interface RunResult {
  method: Method;
  target: number;
  seed: number;
  report?: SearchReport;
  error?: string;
  /** Seconds per phase as seen from the events (pretrain = loading + evaluating the start model). */
  phaseSeconds: Record<string, number>;
  processSeconds: number;
  reused: boolean;
  /** The budget-loss weight the CLI used (from OUT/report.json's settings). */
  alpha?: number;
  /** From OUT/report.json: channels the post-search projection onto the budget moved, and the MACs when the search ended. */
  projectionMoved?: number;
  searchEndMacsFraction?: number;
}

class UsageError extends Error {}

function log(line: string): void {
  process.stderr.write(`[quality ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function parseFlags(argv: string[], root: string): Flags {
  const program = new Command('bench:quality')
    .description('PaS vs the uniform and magnitude baselines at equal MACs and fine-tuning budget, on Fashion-MNIST')
    .option('--baseline-epochs <n>', 'baseline training epochs', parsePositiveInt, 8)
    .option('--search-epochs <n>', 'PaS search epochs', parseNonNegativeInt, 2)
    .option('--finetune-epochs <n>', 'PaS fine-tuning epochs; the baselines fine-tune for search + finetune epochs', parseNonNegativeInt, 2)
    .option('--targets <list>', 'MACs targets as fractions of the baseline\'s deployed MACs', parseTargets, [0.5, 0.3, 0.2])
    .option('--seeds <list>', 'seeds of the pruning runs; the baseline is trained with the first', parseSeeds, [1, 2, 3])
    .option('--methods <list>', 'methods to run (a diagnostic: the checks need all three)', parseMethods, METHODS)
    .option('--width-multiplier <x>', 'width of builtin:default', parsePositiveNumber, 0.5)
    .option('--max-train <n>', 'cap on the training images; passed to the CLI runs too', parsePositiveInt, 6000)
    .option('--batch-size <n>', 'batch size', parsePositiveInt, 64)
    .option('--alpha <x>', 'PaS budget-loss weight (default: the CLI\'s)', parsePositiveNumber)
    .option('--latent-prior <x>', 'PaS latent importance-prior spread (default: the CLI\'s)', parseLatentPrior)
    .addOption(new Option('--lr-schedule <schedule>', 'learning-rate curve of the CLI runs (default: the CLI\'s)').choices(LEARNING_RATE_SCHEDULES))
    .option('--jobs <n>', 'CLI runs at once; wasm is single-threaded, so up to the core count helps', parsePositiveInt, 2)
    .option('--reuse-baseline', 'reuse WORK/baseline and finished runs trained with the same settings', false)
    .option('--report-only', 'train nothing: write the results of the finished runs in WORK (with --reuse-baseline); safe while another bench fills WORK', false)
    .option('--data-dir <dir>', 'Fashion-MNIST IDX folder', DEFAULT_DATA_DIR)
    .option('--work-dir <dir>', 'baseline and run folders', path.join(root, 'bench', '.work'))
    .option('--results-dir <dir>', 'where quality.json / quality.md go', path.join(root, 'bench', 'results'))
    .exitOverride((error) => {
      if (error.exitCode === 0) process.exit(0);
      throw new UsageError(error.message);
    });
  program.parse(argv, { from: 'user' });
  const o = program.opts();
  return {
    ...(o as Omit<Flags, 'dataDir' | 'workDir' | 'resultsDir'>),
    dataDir: path.resolve(o.dataDir),
    workDir: path.resolve(o.workDir),
    resultsDir: path.resolve(o.resultsDir),
  };
}

function parseSeeds(value: string): number[] {
  return value.split(',').map((part) => parseNonNegativeInt(part.trim()));
}

function parseMethods(value: string): Method[] {
  const names = value.split(',').map((part) => part.trim());
  for (const name of names) if (!(METHODS as string[]).includes(name)) throw new InvalidArgumentError(`unknown method '${name}' (${METHODS.join(', ')})`);
  return names as Method[];
}

function parseTargets(value: string): number[] {
  return value.split(',').map((part) => parseFraction(part.trim()));
}

function missingDataFiles(dir: string): string[] {
  return IDX_FILES.filter((f) => !fs.existsSync(path.join(dir, f)) && !fs.existsSync(path.join(dir, `${f}.gz`)));
}

// ---------------------------------------------------------------------------------------------
// Baseline

function deployedSize(model: tf.LayersModel): { macs: number; params: number } {
  const summary = summarizeGraph(reparameterizeGraph(graphFromModel(model)));
  return { macs: summary.totalMacs, params: summary.totalParams };
}

function baselineMetaPath(flags: Flags): string {
  return path.join(flags.workDir, 'baseline-meta.json');
}

function readBaselineMeta(flags: Flags): BaselineMeta | null {
  try {
    return JSON.parse(fs.readFileSync(baselineMetaPath(flags), 'utf8')) as BaselineMeta;
  } catch {
    return null;
  }
}

function baselineMatches(meta: BaselineMeta, flags: Flags): boolean {
  return meta.baselineEpochs === flags.baselineEpochs && meta.seed === flags.seeds[0] && meta.widthMultiplier === flags.widthMultiplier && meta.maxTrain === (flags.maxTrain ?? null) && meta.batchSize === flags.batchSize;
}

async function trainBaseline(flags: Flags, dataSpec: string, baselineDir: string): Promise<BaselineMeta> {
  const started = Date.now();
  const phaseSeconds: Record<string, number> = {};
  const tick = (phase: string, since: number) => {
    phaseSeconds[phase] = (phaseSeconds[phase] ?? 0) + (Date.now() - since) / 1000;
    return Date.now();
  };
  let t = Date.now();
  await initBackend(BACKEND);
  const model = buildBuiltin(MODEL, { seed: flags.seeds[0], widthMultiplier: flags.widthMultiplier });
  const inputShape = model.inputs[0].shape.slice(1) as [number, number, number];
  // Same spec, seed and cap as the CLI runs: the same splits and the same normalization.
  const dataset: Dataset = await loadDataset(dataSpec, { inputShape, seed: flags.seeds[0], maxTrain: flags.maxTrain });
  t = tick('load', t);
  if (dataset.test.count !== TEST_IMAGES) log(`warning: the test split has ${dataset.test.count} images, not ${TEST_IMAGES}`);
  log(`baseline: ${MODEL} on ${dataset.name}: ${dataset.train.count} train / ${dataset.validation.count} validation / ${dataset.test.count} test images, ${flags.baselineEpochs} epoch(s)`);
  const augment = defaultAugmentation(dataset);
  for (let epoch = 0; epoch < flags.baselineEpochs; epoch++) {
    const learningRate = cosineLearningRate(BASELINE_LR, epoch, flags.baselineEpochs);
    let lastLog = Date.now();
    const result = await trainEpoch(model, dataset.train, {
      batchSize: flags.batchSize,
      learningRate,
      momentum: MOMENTUM,
      weightDecay: WEIGHT_DECAY,
      seed: flags.seeds[0] * 7919, // the CLI's pretraining stream
      epoch,
      augment,
      variables: trainableVariables(model),
      onBatch: (p) => {
        if (Date.now() - lastLog < 30000) return;
        lastLog = Date.now();
        log(`baseline epoch ${epoch + 1}/${flags.baselineEpochs}: batch ${p.batch}/${p.batches} loss ${p.loss.toFixed(4)} acc ${p.accuracy.toFixed(4)} (${p.imagesPerSecond.toFixed(0)} img/s)`);
      },
    });
    t = tick('train', t);
    const validation = evaluate(model, dataset.validation);
    t = tick('validate', t);
    log(`baseline epoch ${epoch + 1}/${flags.baselineEpochs}: lr ${learningRate.toFixed(4)} loss ${result.loss.toFixed(4)} train acc ${result.accuracy.toFixed(4)} val acc ${validation.accuracy.toFixed(4)} (${result.seconds.toFixed(0)} s)`);
  }
  const test = evaluate(model, dataset.test);
  t = tick('test', t);
  const { macs, params } = deployedSize(model);
  fs.mkdirSync(flags.workDir, { recursive: true });
  await saveLayersModelToDir(model, baselineDir, { overwrite: true });
  tick('save', t);
  model.dispose();
  const meta: BaselineMeta = {
    baselineEpochs: flags.baselineEpochs,
    seed: flags.seeds[0],
    widthMultiplier: flags.widthMultiplier,
    maxTrain: flags.maxTrain ?? null,
    batchSize: flags.batchSize,
    accuracy: test.accuracy,
    trainCount: dataset.train.count,
    testCount: dataset.test.count,
    macs,
    params,
    wallSeconds: (Date.now() - started) / 1000,
    phaseSeconds,
    date: new Date().toISOString(),
  };
  await writeFileAtomic(baselineMetaPath(flags), JSON.stringify(meta, null, 2));
  log(`baseline: test accuracy ${(100 * test.accuracy).toFixed(2)}%, ${macs} MACs, ${params} params, ${meta.wallSeconds.toFixed(0)} s; saved ${baselineDir}`);
  return meta;
}

// ---------------------------------------------------------------------------------------------
// CLI runs

/** Weight-training epochs after the baseline, per method: the same total for every method. */
function epochsOf(flags: Flags, method: Method): { search: number; finetune: number } {
  return methodSearches(method)
    ? { search: flags.searchEpochs, finetune: flags.finetuneEpochs }
    : { search: 0, finetune: flags.searchEpochs + flags.finetuneEpochs };
}

function cliArgs(flags: Flags, baselineJson: string, dataSpec: string, run: PlannedRun, outDir: string): string[] {
  const epochs = epochsOf(flags, run.method);
  const args = [
    'search', baselineJson,
    '--data', dataSpec,
    '--method', run.method,
    '--target-macs', String(run.target),
    '--pretrain-epochs', '0',
    '--search-epochs', String(epochs.search),
    '--finetune-epochs', String(epochs.finetune),
    '--batch-size', String(flags.batchSize),
    '--seed', String(run.seed),
    // the jobs share the cores: each run gets its share (the CLI's default, auto, is every core)
    '--workers', String(Math.max(1, Math.floor(os.cpus().length / flags.jobs))),
    '--backend', BACKEND,
    '--out', outDir,
    '--json',
  ];
  if (flags.alpha !== undefined) args.push('--alpha', String(flags.alpha));
  if (flags.latentPrior !== undefined && methodSearches(run.method)) args.push('--latent-prior', String(flags.latentPrior));
  if (flags.lrSchedule !== undefined && methodSearches(run.method)) args.push('--lr-schedule', flags.lrSchedule);
  if (flags.maxTrain !== undefined) args.push('--max-train', String(flags.maxTrain));
  return args;
}

interface PlannedRun {
  method: Method;
  target: number;
  seed: number;
}

/** A finished run in `outDir` whose settings are the ones asked for now, if any. */
function reusableReport(outDir: string, flags: Flags, run: PlannedRun): SearchReport | undefined {
  try {
    const saved = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8'));
    const s = saved.settings ?? {};
    const epochs = epochsOf(flags, run.method);
    const same = s.method === run.method && s.targetFraction === run.target && s.seed === run.seed && s.batchSize === flags.batchSize
      && s.finetuneEpochs === epochs.finetune && (!methodSearches(run.method) || s.searchEpochs === epochs.search)
      && (s.maxTrain ?? null) === (flags.maxTrain ?? null) && (flags.alpha === undefined || s.alpha === flags.alpha)
      // Runs from before the prior existed have no latentPrior: they started from equal latents.
      && (!methodSearches(run.method) || (s.latentPrior ?? 0) === (flags.latentPrior ?? DEFAULT_LATENT_PRIOR))
      // Runs from before the schedule existed have none: they ran per phase.
      && (!methodSearches(run.method) || (s.learningRateSchedule ?? 'per-phase') === (flags.lrSchedule ?? DEFAULT_LEARNING_RATE_SCHEDULE)) && s.pretrainEpochs === 0;
    return same ? (saved as SearchReport) : undefined;
  } catch {
    return undefined;
  }
}

/** What report.json holds beyond the `done` event's SearchReport. */
function savedExtras(outDir: string): Pick<RunResult, 'alpha' | 'projectionMoved' | 'searchEndMacsFraction'> {
  try {
    const saved = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8'));
    return { alpha: saved.settings?.alpha, projectionMoved: saved.projectionMoved, searchEndMacsFraction: saved.searchEndMacsFraction };
  } catch {
    return {};
  }
}

function runCli(root: string, flags: Flags, baselineJson: string, dataSpec: string, run: PlannedRun): Promise<RunResult> {
  const { method, target, seed } = run;
  const label = `${method}@${target}/s${seed}`;
  const outDir = path.join(flags.workDir, 'runs', `${method}-${target}-s${seed}`);
  const result: RunResult = { method, target, seed, phaseSeconds: {}, processSeconds: 0, reused: false };
  if (flags.reuseBaseline) {
    const report = reusableReport(outDir, flags, run);
    if (report) {
      log(`${label}: reusing the finished run in ${outDir}`);
      return Promise.resolve({ ...result, report, reused: true, ...savedExtras(outDir) });
    }
  }
  if (flags.reportOnly) return Promise.resolve({ ...result, error: 'not run yet (--report-only)' });
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  const args = cliArgs(flags, baselineJson, dataSpec, run, outDir);
  log(`${label}: node dist/cli.js ${args.join(' ')}`);
  const started = Date.now();
  let phase = 'start';
  let phaseStarted = started;
  let lastBatchLog = started;
  let macsOriginal = 0;
  const endPhase = (next: string) => {
    const now = Date.now();
    result.phaseSeconds[phase] = (result.phaseSeconds[phase] ?? 0) + (now - phaseStarted) / 1000;
    phase = next;
    phaseStarted = now;
  };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'dist', 'cli.js'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.trim()) log(`${label} | ${line}`);
    });
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: WorkerEvent;
      try {
        event = JSON.parse(line) as WorkerEvent;
      } catch {
        log(`${label} | ${line}`);
        return;
      }
      switch (event.type) {
        case 'model':
          macsOriginal = event.macsOriginal;
          log(`${label}: ${event.macsOriginal} MACs, target ${event.macsTarget.toFixed(0)}, ${event.groups.length} prunable layers`);
          break;
        case 'phase':
          endPhase(event.phase);
          log(`${label}: == ${event.phase}${event.epochs > 0 ? ` (${event.epochs} epochs)` : ''}`);
          break;
        case 'batch':
          if (Date.now() - lastBatchLog > 60000) {
            lastBatchLog = Date.now();
            log(`${label}: ${event.phase} epoch ${event.epoch} batch ${event.batch}/${event.batches} loss ${event.loss.toFixed(4)} acc ${event.accuracy.toFixed(4)} ETA ${Math.round(event.etaSeconds)} s`);
          }
          break;
        case 'epoch': {
          const macs = event.macs > 0 && macsOriginal > 0 ? ` MACs ${((100 * event.macs) / macsOriginal).toFixed(1)}% widths [${event.widths.join(',')}]` : '';
          log(`${label}: ${event.phase} epoch ${event.epoch}/${event.epochs} loss ${event.loss.toFixed(4)} train acc ${event.accuracy.toFixed(4)} val acc ${event.valAccuracy.toFixed(4)}${macs}`);
          break;
        }
        case 'done':
          result.report = event.report;
          break;
        case 'error':
          result.error = event.message + (event.file ? ` (${event.file})` : '');
          break;
        case 'cancelled':
          result.error = 'cancelled';
          break;
        default:
          break;
      }
    });
    child.on('error', (error) => {
      result.error = `could not start the CLI: ${error.message}`;
    });
    child.on('close', (code, signal) => {
      endPhase('exit');
      result.processSeconds = (Date.now() - started) / 1000;
      if (code !== 0 && !result.error) result.error = `exit ${code ?? signal}`;
      if (!result.report && !result.error) result.error = 'no done event';
      if (result.report) Object.assign(result, savedExtras(outDir));
      log(result.report ? `${label}: done in ${result.processSeconds.toFixed(0)} s, test accuracy ${(100 * result.report.accuracyAfter).toFixed(2)}%` : `${label}: FAILED: ${result.error}`);
      resolve(result);
    });
  });
}

async function runPool<T, R>(items: T[], jobs: number, worker: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(jobs, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await worker(items[i]);
    }
  });
  await Promise.all(lanes);
  return results;
}

// ---------------------------------------------------------------------------------------------
// Results

const pct = (v: number, digits = 2) => `${(100 * v).toFixed(digits)}%`;

/** Rounds of latency measurement; the models are timed in turn within a round. */
const LATENCY_ROUNDS = 5;

/**
 * Latency of every deployed model (batch 1, this process's backend: the shipping wasm one), in
 * ms, measured after every run has finished so the parallel jobs do not contend with the timing.
 * The baseline is deployed first (reparameterized like the CLI's deployed models: RepVGG
 * branches fused, BN folded), so every row times the same kind of network. The models take turns
 * in LATENCY_ROUNDS rounds (src/engine/latency.ts's median of 30 passes after warm-up each) and
 * each model's figure is the median of its rounds: on a 0.3 ms network one garbage collection or
 * JIT tier-up moved a single measurement by 3-10x (the first model timed, and 2 of 27 others, in
 * the first x0.5 run), and taking turns spreads such events over all models instead of
 * charging them to one.
 */
async function deployedLatenciesMs(modelJsons: Array<{ file: string; deploy: boolean }>): Promise<Array<number | null>> {
  const models: Array<tf.LayersModel | null> = [];
  try {
    for (const { file, deploy } of modelJsons) {
      if (!file.endsWith('.json')) {
        models.push(null);
        continue;
      }
      const loaded = await loadLayersModelFromFile(file);
      if (!deploy) {
        models.push(loaded);
        continue;
      }
      const graph = graphFromModel(loaded);
      loaded.dispose();
      models.push(await modelFromGraph(reparameterizeGraph(graph)));
    }
    const rounds: number[][] = models.map(() => []);
    for (let round = 0; round < LATENCY_ROUNDS; round++) {
      models.forEach((model, i) => {
        if (model) rounds[i].push(measureLatency(model, { batch: 1, runs: 30, perLayer: false }).medianMs);
      });
    }
    return rounds.map((values, i) => (models[i] ? median(values) : null));
  } finally {
    for (const model of models) model?.dispose();
  }
}


interface Summary {
  method: Method;
  target: number;
  runs: number;
  accuracyMean: number;
  accuracyStd: number;
  macsMean: number;
  paramsMean: number;
  latencyMsMean: number | null;
  searchEndMacsFractionMean: number | null;
}

function meanStd(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  // Sample standard deviation (n - 1): the spread a new seed would show.
  const variance = values.length > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}

function summarize(rows: Row[], targets: number[]): Summary[] {
  const out: Summary[] = [];
  for (const target of targets) {
    for (const method of METHODS) {
      const mine = rows.filter((r) => r.method === method && r.targetMacs === target);
      if (mine.length === 0) continue;
      const accuracy = meanStd(mine.map((r) => r.accuracy));
      const latencies = mine.map((r) => r.latencyMs).filter((v): v is number => v !== null);
      const searchEnds = mine.map((r) => r.searchEndMacsFraction).filter((v): v is number => typeof v === 'number');
      out.push({
        method,
        target,
        runs: mine.length,
        accuracyMean: accuracy.mean,
        accuracyStd: accuracy.std,
        macsMean: meanStd(mine.map((r) => r.macs)).mean,
        paramsMean: meanStd(mine.map((r) => r.params)).mean,
        latencyMsMean: latencies.length === mine.length ? meanStd(latencies).mean : null,
        searchEndMacsFractionMean: searchEnds.length > 0 ? meanStd(searchEnds).mean : null,
      });
    }
  }
  return out;
}

function summaryTable(summaries: Summary[], baseline: Row): string {
  const lines = [
    '| method | target | runs | accuracy mean +- std | vs baseline | MACs (mean) | % of baseline MACs | params (mean) | latency (ms, batch 1) | search ended at |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| baseline | - | 1 | ${pct(baseline.accuracy)} |  | ${baseline.macs.toLocaleString('en-US')} | 100.0% | ${baseline.params.toLocaleString('en-US')} | ${baseline.latencyMs === null ? 'n/a' : baseline.latencyMs.toFixed(2)} |  |`,
  ];
  for (const s of summaries) {
    const delta = 100 * (s.accuracyMean - baseline.accuracy);
    lines.push(`| ${s.method} | ${pct(s.target, 0)} | ${s.runs} | ${pct(s.accuracyMean)} +- ${(100 * s.accuracyStd).toFixed(2)} | ${delta >= 0 ? '+' : ''}${delta.toFixed(2)} pt | ${Math.round(s.macsMean).toLocaleString('en-US')} | ${pct(s.macsMean / baseline.macs, 1)} | ${Math.round(s.paramsMean).toLocaleString('en-US')} | ${s.latencyMsMean === null ? 'n/a' : s.latencyMsMean.toFixed(2)} | ${s.searchEndMacsFractionMean === null ? '' : pct(s.searchEndMacsFractionMean, 1)} |`);
  }
  return lines.join('\n');
}

function runsTable(rows: Row[], baseline: Row, layerNames: string[]): string {
  const lines = [
    '| method | target | seed | MACs | % of baseline MACs | params | accuracy | vs baseline | search ended at | widths |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const delta = r.method === 'baseline' ? '' : `${(100 * (r.accuracy - baseline.accuracy)) >= 0 ? '+' : ''}${(100 * (r.accuracy - baseline.accuracy)).toFixed(2)} pt`;
    const searchEnd = typeof r.searchEndMacsFraction === 'number' ? pct(r.searchEndMacsFraction, 1) : '';
    lines.push(`| ${r.method} | ${r.targetMacs === null ? '-' : pct(r.targetMacs, 0)} | ${r.seed} | ${r.macs.toLocaleString('en-US')} | ${pct(r.macs / baseline.macs, 1)} | ${r.params.toLocaleString('en-US')} | ${pct(r.accuracy)} | ${delta} | ${searchEnd} | ${r.widths.join(', ')} |`);
  }
  if (layerNames.length > 0) lines.push('', `Widths are per prunable layer, in order: ${layerNames.join(', ')}.`);
  return lines.join('\n');
}

interface Check {
  name: string;
  pass: boolean | null;
  detail: string;
}

/** The issue's targets, on the means over seeds. */
function targetChecks(summaries: Summary[], rows: Row[], baseline: Row, targets: number[]): Check[] {
  const find = (method: Method, target: number) => summaries.find((s) => s.method === method && s.target === target);
  const show = (s: Summary) => `${pct(s.accuracyMean)} +- ${(100 * s.accuracyStd).toFixed(2)}`;
  const checks: Check[] = [];
  const pas50 = find('pas', 0.5);
  checks.push(pas50
    ? { name: 'PaS at 50% MACs within 0.5 pt of the unpruned baseline (mean)', pass: pas50.accuracyMean >= baseline.accuracy - 0.005, detail: `${show(pas50)} vs ${pct(baseline.accuracy)} (${(100 * (pas50.accuracyMean - baseline.accuracy)).toFixed(2)} pt)` }
    : { name: 'PaS at 50% MACs within 0.5 pt of the unpruned baseline (mean)', pass: null, detail: 'no PaS run at 0.5' });
  for (const target of targets) {
    const pas = find('pas', target);
    const margins: Array<[Method, number]> = [['uniform', 0.003], ['magnitude', 0]];
    for (const [other, margin] of margins) {
      const o = find(other, target);
      const name = `PaS >= ${other}${margin > 0 ? ` + ${(100 * margin).toFixed(1)} pt` : ''} at ${pct(target, 0)} MACs (means${target < 0.3 ? '; not a target of the issue, reported' : ''})`;
      checks.push(pas && o ? { name, pass: pas.accuracyMean >= o.accuracyMean + margin, detail: `${show(pas)} vs ${show(o)} (${(100 * (pas.accuracyMean - o.accuracyMean)).toFixed(2)} pt)` } : { name, pass: null, detail: 'a run is missing' });
    }
  }
  for (const r of rows) {
    if (r.targetMacs === null) continue;
    const goal = r.targetMacs * baseline.macs;
    const off = r.macs / goal - 1;
    checks.push({ name: `${r.method} at ${pct(r.targetMacs, 0)}, seed ${r.seed}: final MACs within 3% under the target`, pass: off <= 0 && off >= -0.03, detail: `${r.macs} vs ${Math.round(goal)} (${off >= 0 ? '+' : ''}${(100 * off).toFixed(1)}%)` });
    if (typeof r.searchEndMacsFraction === 'number') {
      const searchOff = r.searchEndMacsFraction / r.targetMacs - 1;
      checks.push({ name: `${r.method} at ${pct(r.targetMacs, 0)}, seed ${r.seed}: the search alone within 5% of the target`, pass: Math.abs(searchOff) <= 0.05, detail: `${pct(r.searchEndMacsFraction, 1)} (${searchOff >= 0 ? '+' : ''}${(100 * searchOff).toFixed(1)}%), then the projection moved ${r.projectionMoved ?? 0} channel(s)` });
    }
  }
  return checks;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const root = findPackageRoot();
  const benchStarted = Date.now();
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2), root);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bench:quality: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const missing = missingDataFiles(flags.dataDir);
  if (missing.length > 0) {
    process.stderr.write(
      `bench:quality: Fashion-MNIST is not in ${flags.dataDir} (missing ${missing.join(', ')}).\n` +
      'Install it with:  sudo apt-get install dataset-fashion-mnist\n' +
      '(or pass --data-dir DIR holding the four IDX files, gzipped or not)\n',
    );
    return 2;
  }
  if (!fs.existsSync(path.join(root, 'dist', 'cli.js'))) {
    process.stderr.write('bench:quality: dist/cli.js is missing; run `npm run build` (or use `npm run bench:quality`)\n');
    return 2;
  }
  const dataSpec = `idx:${flags.dataDir}`;
  const baselineDir = path.join(flags.workDir, 'baseline');
  const baselineJson = path.join(baselineDir, 'model.json');
  log(`settings: ${JSON.stringify(flags)}`);

  // 1. The baseline.
  let meta: BaselineMeta | null = null;
  let baselineReused = false;
  if (flags.reportOnly && !flags.reuseBaseline) {
    process.stderr.write('bench:quality: --report-only needs --reuse-baseline\n');
    return 2;
  }
  if (flags.reuseBaseline && fs.existsSync(baselineJson)) {
    meta = readBaselineMeta(flags);
    if (!meta || !baselineMatches(meta, flags)) {
      process.stderr.write(
        `bench:quality: ${baselineDir} was trained with other settings (${meta ? `--baseline-epochs ${meta.baselineEpochs} --seeds ${meta.seed},... --width-multiplier ${meta.widthMultiplier} --max-train ${meta.maxTrain ?? 'all'} --batch-size ${meta.batchSize}` : 'no baseline-meta.json'}); drop --reuse-baseline to retrain it\n`,
      );
      return 2;
    }
    baselineReused = true;
    log(`baseline: reusing ${baselineDir} (test accuracy ${pct(meta.accuracy)}, trained ${meta.date})`);
  } else {
    // A new baseline invalidates every earlier run.
    fs.rmSync(path.join(flags.workDir, 'runs'), { recursive: true, force: true });
    meta = await trainBaseline(flags, dataSpec, baselineDir);
  }

  // 2. The pruning runs: every method at every target and seed; seeds outermost, so that a run
  // cut short still has every method at every target for the first seeds.
  const plan: PlannedRun[] = flags.seeds.flatMap((seed) => flags.targets.flatMap((target) => flags.methods.map((method) => ({ method, target, seed }))));
  const runs = await runPool(plan, flags.jobs, (run) => runCli(root, flags, baselineJson, dataSpec, run));

  // 3. Results.
  const firstReport = runs.find((r) => r.report)?.report;
  const layerNames = firstReport?.layers.map((l) => l.name) ?? [];
  const baseline: Row = {
    method: 'baseline',
    targetMacs: null,
    seed: meta.seed,
    macs: meta.macs,
    params: meta.params,
    accuracy: meta.accuracy,
    widths: firstReport?.layers.map((l) => l.originalWidth) ?? [],
    wallSeconds: meta.wallSeconds,
    latencyMs: null,
  };
  const rows: Row[] = [baseline];
  const warnings: string[] = [];
  for (const run of runs) {
    const r = run.report;
    if (!r) continue;
    const label = `${run.method}@${run.target}/s${run.seed}`;
    rows.push({
      method: run.method,
      targetMacs: run.target,
      seed: run.seed,
      macs: r.macsAfter,
      params: r.paramsAfter,
      accuracy: r.accuracyAfter,
      widths: r.layers.map((l) => l.searchedWidth),
      wallSeconds: r.wallSeconds,
      latencyMs: null,
      searchEndMacsFraction: run.searchEndMacsFraction ?? null,
      projectionMoved: run.projectionMoved ?? null,
    });
    // Consistency: the CLI must see the same model, data and normalization as the baseline trainer.
    if (r.macsBefore !== meta.macs || r.paramsBefore !== meta.params) warnings.push(`${label}: the CLI's unpruned model has ${r.macsBefore} MACs / ${r.paramsBefore} params, the bench computed ${meta.macs} / ${meta.params}`);
    if (Math.abs(r.accuracyBefore - meta.accuracy) > 1e-4) warnings.push(`${label}: the CLI measured the baseline at ${pct(r.accuracyBefore)}, the bench at ${pct(meta.accuracy)}`);
    if (Math.abs(r.targetMacs - run.target * r.macsBefore) > 0.5) warnings.push(`${label}: the CLI's target is ${r.targetMacs} MACs, not ${run.target} x ${r.macsBefore}`);
  }
  const latencies = await deployedLatenciesMs(rows.map((row, i) => (i === 0 ? { file: baselineJson, deploy: true } : { file: runs.filter((r) => r.report)[i - 1].report!.deployedModel, deploy: false })));
  rows.forEach((row, i) => (row.latencyMs = latencies[i]));
  const failed = runs.filter((r) => !r.report);
  for (const f of failed) warnings.push(`${f.method}@${f.target}/s${f.seed}: FAILED: ${f.error}`);

  const summaries = summarize(rows, flags.targets);
  const summary = summaryTable(summaries, baseline);
  const perRun = runsTable(rows, baseline, layerNames);
  const checks = targetChecks(summaries, rows, baseline, flags.targets);
  const cpus = os.cpus();
  const epochsByMethod = Object.fromEntries(METHODS.map((m) => [m, methodSearches(m) ? epochsOf(flags, m) : { finetune: epochsOf(flags, m).finetune }]));
  const settings = {
    model: MODEL,
    widthMultiplier: flags.widthMultiplier,
    dataset: dataSpec,
    trainImages: meta.trainCount,
    testImages: meta.testCount,
    backend: BACKEND,
    baselineEpochs: flags.baselineEpochs,
    epochsByMethod,
    targets: flags.targets,
    seeds: flags.seeds,
    baselineSeed: meta.seed,
    maxTrain: flags.maxTrain ?? null,
    batchSize: flags.batchSize,
    alpha: flags.alpha ?? runs.find((r) => r.alpha !== undefined)?.alpha ?? null,
    latentPrior: flags.latentPrior ?? DEFAULT_LATENT_PRIOR,
    learningRateSchedule: flags.lrSchedule ?? DEFAULT_LEARNING_RATE_SCHEDULE,
    jobs: flags.jobs,
    baselineRecipe: { optimizer: 'SGD', momentum: MOMENTUM, learningRate: BASELINE_LR, schedule: 'cosine', weightDecay: WEIGHT_DECAY, augmentation: 'pad-crop 2 + horizontal flip' },
    cliLearningRates: (flags.lrSchedule ?? DEFAULT_LEARNING_RATE_SCHEDULE) === 'shared'
      ? 'base 0.02, one cosine per epoch over all weight-training epochs after the baseline (PaS: search then fine-tune along it; the baselines: fine-tune along it)'
      : 'PaS: search at 0.02 constant, then 0.02 cosine over the fine-tune epochs; the baselines: 0.02 cosine over their fine-tune epochs',
    seedMeaning: 'a run\'s seed picks its training subset (--max-train), data order and augmentation; the baseline is trained once, with the first seed',
    latency: 'ms, batch 1: each deployed model (the baseline reparameterized like the runs) timed after all runs finished, the models taking turns in 5 rounds of the median of 30 passes after warm-up (src/engine/latency.ts); the median of the rounds; on this process\'s backend',
    baselineReused,
    layerNames,
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, os: `${os.type()} ${os.release()}`, node: process.version, tfjs: tf.version.tfjs, loadAverage: os.loadavg().map((v) => Number(v.toFixed(2))) },
  };
  const wallSeconds = (Date.now() - benchStarted) / 1000;
  const timings = {
    baseline: { wallSeconds: meta.wallSeconds, phaseSeconds: meta.phaseSeconds, reused: baselineReused },
    runs: runs.map((r) => ({ method: r.method, target: r.target, seed: r.seed, processSeconds: r.processSeconds, reportWallSeconds: r.report?.wallSeconds ?? null, phaseSeconds: r.phaseSeconds, reused: r.reused })),
  };
  const diagnostics = runs.filter((r) => r.report).map((r) => ({
    method: r.method,
    target: r.target,
    seed: r.seed,
    searchEndMacsFraction: r.searchEndMacsFraction ?? null,
    projectionMoved: r.projectionMoved ?? null,
    accuracyMasked: r.report!.accuracyMasked,
    reparamMaxAbsDiff: r.report!.reparamMaxAbsDiff,
  }));
  fs.mkdirSync(flags.resultsDir, { recursive: true });
  await writeFileAtomic(path.join(flags.resultsDir, 'quality.json'), JSON.stringify({ summaries, rows, settings, checks, warnings, diagnostics, timings, wallSeconds }, null, 2) + '\n');
  const checkLines = checks.map((c) => `- ${c.pass === null ? 'N/A ' : c.pass ? 'PASS' : 'MISS'} ${c.name}: ${c.detail}`);
  const epochLine = METHODS.map((m) => `${m}: ${methodSearches(m) ? `${epochsOf(flags, m).search} search + ${epochsOf(flags, m).finetune} fine-tune` : `${epochsOf(flags, m).finetune} fine-tune`}`).join('; ');
  const md = [
    '# PaS vs uniform and magnitude pruning on Fashion-MNIST',
    '',
    `${settings.date}; ${settings.machine.cpu} x${settings.machine.cores} (load average at the end ${settings.machine.loadAverage.join(', ')}: shared with other work, so wall times are inflated); tfjs ${settings.machine.tfjs} ${BACKEND}; ` +
      `\`${MODEL}\` at width x${flags.widthMultiplier}, trained ${flags.baselineEpochs} epochs on ${meta.trainCount} images (seed ${meta.seed}); ` +
      `weight-training epochs after the baseline: ${epochLine}; seeds ${flags.seeds.join(', ')}; accuracy on the ${meta.testCount} test images.`,
    '',
    '## Means over seeds',
    '',
    summary,
    '',
    '## Target checks (targets, not assertions)',
    '',
    ...checkLines,
    '',
    '## Every run',
    '',
    perRun,
    ...(warnings.length > 0 ? ['', '## Warnings', '', ...warnings.map((w) => `- ${w}`)] : []),
    '',
    `Total wall time ${(wallSeconds / 60).toFixed(1)} min with --jobs ${flags.jobs}.`,
    '',
  ].join('\n');
  await writeFileAtomic(path.join(flags.resultsDir, 'quality.md'), md);

  process.stdout.write(`\n${summary}\n\nTarget checks (targets, not assertions):\n${checkLines.join('\n')}\n`);
  if (warnings.length > 0) process.stdout.write(`\nWarnings:\n${warnings.map((w) => `- ${w}`).join('\n')}\n`);
  process.stdout.write(`\nWrote ${path.join(flags.resultsDir, 'quality.json')} and quality.md (${(wallSeconds / 60).toFixed(1)} min)\n`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`bench:quality crashed: ${(error as Error)?.stack ?? error}\n`);
    process.exit(1);
  },
);
