/**
 * `npm run bench:quality [-- --flags]`: does PaS beat the uniform and magnitude baselines at equal
 * MACs and equal fine-tuning budget, on the full Fashion-MNIST?
 *
 * 1. Trains the small RepVGG (`builtin:default`) ONCE to a baseline on the full Fashion-MNIST
 *    training split (60,000 images less the 10% the engine holds out for validation): SGD momentum
 *    0.9, lr 0.1 cosine, batch 64, weight decay 1e-4, pad-crop + flip augmentation, the engine's own
 *    trainer. Evaluated on all 10,000 test images; saved to WORK/baseline/model.json.
 * 2. Runs the CLI (`node dist/cli.js search WORK/baseline/model.json --pretrain-epochs 0 ...`) as a
 *    child process for PaS, uniform and magnitude at each MACs target, all with the same seed and
 *    the same `--finetune-epochs`; PaS also gets `--search-epochs` (as in the paper, the search is
 *    PaS's own extra phase).
 * 3. Writes RESULTS/quality.json and RESULTS/quality.md and prints the table and the target checks
 *    (targets, not assertions: exit 0 whatever they say; 1 when a run crashed; 2 for missing data
 *    or bad flags).
 *
 * Flags (all optional):
 *   --baseline-epochs N   baseline training epochs (15)
 *   --search-epochs N     PaS search epochs (4)
 *   --finetune-epochs N   fine-tuning epochs, the same for every method (6)
 *   --targets 0.5,0.3     MACs targets as fractions of the baseline's deployed MACs
 *   --max-train N         cap on the training images (default: all); passed to the CLI runs too
 *   --seed N              one seed for the baseline and every run (1)
 *   --batch-size N        (64)
 *   --alpha X             PaS budget-loss weight (default: the CLI's default)
 *   --jobs N              CLI runs at once (1); wasm is single-threaded, so N <= cores helps
 *   --reuse-baseline      skip training when WORK/baseline exists and was trained with the same
 *                         --baseline-epochs/--seed/--max-train/--batch-size; finished runs with the
 *                         same settings are reused as well
 *   --data-dir DIR        Fashion-MNIST IDX folder (/usr/share/datasets/fashion-mnist)
 *   --work-dir DIR        baseline and run folders (bench/.work)
 *   --results-dir DIR     where quality.json / quality.md go (bench/results)
 *
 * Test accuracy is always on the full 10,000-image test split (`--max-test` is never used).
 */
import { spawn } from 'child_process';
import { Command } from 'commander';
import { parseFraction, parseNonNegativeInt, parsePositiveInt, parsePositiveNumber } from '../src/cli/options';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import * as tf from '@tensorflow/tfjs';
import type { SearchReport, WorkerEvent } from '../src/shared/workerProtocol';
import { initBackend } from '../src/engine/backends';
import { defaultAugmentation, findPackageRoot, loadDataset, type Dataset } from '../src/engine/data';
import { summarizeGraph } from '../src/engine/graph/counting';
import { graphFromModel } from '../src/engine/graph/modelGraph';
import { saveLayersModelToDir, writeFileAtomic } from '../src/engine/io';
import { cosineLearningRate, evaluate, SGD_MOMENTUM as MOMENTUM, trainableVariables, trainEpoch, WEIGHT_DECAY } from '../src/engine/train/trainer';
import { reparameterizeGraph } from '../src/engine/transform/reparameterize';
import { buildBuiltin } from '../src/engine/zoo/builtins';

type Method = 'pas' | 'uniform' | 'magnitude';
const METHODS: Method[] = ['pas', 'uniform', 'magnitude'];
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
  seed: number;
  batchSize: number;
  alpha?: number;
  jobs: number;
  reuseBaseline: boolean;
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
}

interface BaselineMeta {
  baselineEpochs: number;
  seed: number;
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
  searchEndMacs?: number;
}

class UsageError extends Error {}

function log(line: string): void {
  process.stderr.write(`[quality ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function parseFlags(argv: string[], root: string): Flags {
  const program = new Command('bench:quality')
    .description('PaS vs the uniform and magnitude baselines at equal MACs and fine-tuning budget, on Fashion-MNIST')
    .option('--baseline-epochs <n>', 'baseline training epochs', parsePositiveInt, 15)
    .option('--search-epochs <n>', 'PaS search epochs', parseNonNegativeInt, 4)
    .option('--finetune-epochs <n>', 'fine-tuning epochs, the same for every method', parseNonNegativeInt, 6)
    .option('--targets <list>', 'MACs targets as fractions of the baseline\'s deployed MACs', parseTargets, [0.5, 0.3])
    .option('--max-train <n>', 'cap on the training images (default: all); passed to the CLI runs too', parsePositiveInt)
    .option('--seed <n>', 'one seed for the baseline and every run', parseNonNegativeInt, 1)
    .option('--batch-size <n>', 'batch size', parsePositiveInt, 64)
    .option('--alpha <x>', 'PaS budget-loss weight (default: the CLI\'s)', parsePositiveNumber)
    .option('--jobs <n>', 'CLI runs at once; wasm is single-threaded, so up to the core count helps', parsePositiveInt, 1)
    .option('--reuse-baseline', 'reuse WORK/baseline and finished runs trained with the same settings', false)
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
  return meta.baselineEpochs === flags.baselineEpochs && meta.seed === flags.seed && meta.maxTrain === (flags.maxTrain ?? null) && meta.batchSize === flags.batchSize;
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
  const model = buildBuiltin(MODEL, { seed: flags.seed });
  const inputShape = model.inputs[0].shape.slice(1) as [number, number, number];
  // Same spec, seed and cap as the CLI runs: the same splits and the same normalization.
  const dataset: Dataset = await loadDataset(dataSpec, { inputShape, seed: flags.seed, maxTrain: flags.maxTrain });
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
      seed: flags.seed * 7919, // the CLI's pretraining stream
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
    seed: flags.seed,
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

function cliArgs(flags: Flags, baselineJson: string, dataSpec: string, method: Method, target: number, outDir: string): string[] {
  const args = [
    'search', baselineJson,
    '--data', dataSpec,
    '--method', method,
    '--target-macs', String(target),
    '--pretrain-epochs', '0',
    '--search-epochs', String(method === 'pas' ? flags.searchEpochs : 0),
    '--finetune-epochs', String(flags.finetuneEpochs),
    '--batch-size', String(flags.batchSize),
    '--seed', String(flags.seed),
    '--backend', BACKEND,
    '--out', outDir,
    '--json',
  ];
  if (flags.alpha !== undefined) args.push('--alpha', String(flags.alpha));
  if (flags.maxTrain !== undefined) args.push('--max-train', String(flags.maxTrain));
  return args;
}

/** A finished run in `outDir` whose settings are the ones asked for now, if any. */
function reusableReport(outDir: string, flags: Flags, method: Method, target: number): SearchReport | undefined {
  try {
    const saved = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8'));
    const s = saved.settings ?? {};
    const same = s.method === method && s.targetFraction === target && s.seed === flags.seed && s.batchSize === flags.batchSize
      && s.finetuneEpochs === flags.finetuneEpochs && (method !== 'pas' || s.searchEpochs === flags.searchEpochs)
      && (s.maxTrain ?? null) === (flags.maxTrain ?? null) && (flags.alpha === undefined || s.alpha === flags.alpha) && s.pretrainEpochs === 0;
    return same ? (saved as SearchReport) : undefined;
  } catch {
    return undefined;
  }
}

/** What report.json holds beyond the `done` event's SearchReport. */
function savedExtras(outDir: string): Pick<RunResult, 'alpha' | 'projectionMoved' | 'searchEndMacs'> {
  try {
    const saved = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8'));
    const searchEpochs = (saved.history ?? []).filter((e: { phase: string }) => e.phase === 'search');
    return { alpha: saved.settings?.alpha, projectionMoved: saved.projectionMoved, searchEndMacs: searchEpochs.length > 0 ? searchEpochs[searchEpochs.length - 1].macs : undefined };
  } catch {
    return {};
  }
}

function runCli(root: string, flags: Flags, baselineJson: string, dataSpec: string, method: Method, target: number): Promise<RunResult> {
  const label = `${method}@${target}`;
  const outDir = path.join(flags.workDir, 'runs', `${method}-${target}`);
  const result: RunResult = { method, target, phaseSeconds: {}, processSeconds: 0, reused: false };
  if (flags.reuseBaseline) {
    const report = reusableReport(outDir, flags, method, target);
    if (report) {
      log(`${label}: reusing the finished run in ${outDir}`);
      return Promise.resolve({ ...result, report, reused: true, ...savedExtras(outDir) });
    }
  }
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  const args = cliArgs(flags, baselineJson, dataSpec, method, target, outDir);
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

function markdownTable(rows: Row[], baseline: Row, layerNames: string[]): string {
  const lines = [
    '| method | target | MACs | % of baseline MACs | params | accuracy | vs baseline | widths |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const r of rows) {
    const delta = r.method === 'baseline' ? '' : `${(100 * (r.accuracy - baseline.accuracy)) >= 0 ? '+' : ''}${(100 * (r.accuracy - baseline.accuracy)).toFixed(2)} pt`;
    lines.push(`| ${r.method} | ${r.targetMacs === null ? '-' : pct(r.targetMacs, 0)} | ${r.macs.toLocaleString('en-US')} | ${pct(r.macs / baseline.macs, 1)} | ${r.params.toLocaleString('en-US')} | ${pct(r.accuracy)} | ${delta} | ${r.widths.join(', ')} |`);
  }
  if (layerNames.length > 0) lines.push('', `Widths are per prunable layer, in order: ${layerNames.join(', ')}.`);
  return lines.join('\n');
}

interface Check {
  name: string;
  pass: boolean | null;
  detail: string;
}

function targetChecks(rows: Row[], baseline: Row, targets: number[]): Check[] {
  const find = (method: Method, target: number) => rows.find((r) => r.method === method && r.targetMacs === target);
  const checks: Check[] = [];
  const pas50 = find('pas', 0.5);
  checks.push(pas50
    ? { name: 'PaS at 50% MACs within 0.5 points of the baseline', pass: pas50.accuracy >= baseline.accuracy - 0.005, detail: `${pct(pas50.accuracy)} vs ${pct(baseline.accuracy)} (${(100 * (pas50.accuracy - baseline.accuracy)).toFixed(2)} pt)` }
    : { name: 'PaS at 50% MACs within 0.5 points of the baseline', pass: null, detail: 'no PaS run at 0.5' });
  for (const target of targets) {
    const pas = find('pas', target);
    for (const other of ['uniform', 'magnitude'] as const) {
      const o = find(other, target);
      const name = `PaS above ${other} at ${pct(target, 0)} MACs`;
      checks.push(pas && o ? { name, pass: pas.accuracy > o.accuracy, detail: `${pct(pas.accuracy)} vs ${pct(o.accuracy)} (${(100 * (pas.accuracy - o.accuracy)).toFixed(2)} pt)` } : { name, pass: null, detail: 'a run is missing' });
    }
  }
  for (const r of rows) {
    if (r.targetMacs === null) continue;
    const goal = r.targetMacs * baseline.macs;
    const off = r.macs / goal - 1;
    checks.push({ name: `${r.method} at ${pct(r.targetMacs, 0)}: final MACs within 3% of target`, pass: Math.abs(off) <= 0.03, detail: `${r.macs} vs ${Math.round(goal)} (${off >= 0 ? '+' : ''}${(100 * off).toFixed(1)}%)` });
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
  if (flags.reuseBaseline && fs.existsSync(baselineJson)) {
    meta = readBaselineMeta(flags);
    if (!meta || !baselineMatches(meta, flags)) {
      process.stderr.write(
        `bench:quality: ${baselineDir} was trained with other settings (${meta ? `--baseline-epochs ${meta.baselineEpochs} --seed ${meta.seed} --max-train ${meta.maxTrain ?? 'all'} --batch-size ${meta.batchSize}` : 'no baseline-meta.json'}); drop --reuse-baseline to retrain it\n`,
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

  // 2. The pruning runs: every method at every target.
  const plan = flags.targets.flatMap((target) => METHODS.map((method) => ({ method, target })));
  const runs = await runPool(plan, flags.jobs, ({ method, target }) => runCli(root, flags, baselineJson, dataSpec, method, target));

  // 3. Results.
  const firstReport = runs.find((r) => r.report)?.report;
  const layerNames = firstReport?.layers.map((l) => l.name) ?? [];
  const baseline: Row = {
    method: 'baseline',
    targetMacs: null,
    macs: meta.macs,
    params: meta.params,
    accuracy: meta.accuracy,
    widths: firstReport?.layers.map((l) => l.originalWidth) ?? [],
    wallSeconds: meta.wallSeconds,
  };
  const rows: Row[] = [baseline];
  const warnings: string[] = [];
  for (const run of runs) {
    const r = run.report;
    if (!r) continue;
    rows.push({
      method: run.method,
      targetMacs: run.target,
      macs: r.macsAfter,
      params: r.paramsAfter,
      accuracy: r.accuracyAfter,
      widths: r.layers.map((l) => l.searchedWidth),
      wallSeconds: r.wallSeconds,
    });
    // Consistency: the CLI must see the same model, data and normalization as the baseline trainer.
    if (r.macsBefore !== meta.macs || r.paramsBefore !== meta.params) warnings.push(`${run.method}@${run.target}: the CLI's unpruned model has ${r.macsBefore} MACs / ${r.paramsBefore} params, the bench computed ${meta.macs} / ${meta.params}`);
    if (Math.abs(r.accuracyBefore - meta.accuracy) > 1e-4) warnings.push(`${run.method}@${run.target}: the CLI measured the baseline at ${pct(r.accuracyBefore)}, the bench at ${pct(meta.accuracy)}`);
    if (Math.abs(r.targetMacs - run.target * r.macsBefore) > 0.5) warnings.push(`${run.method}@${run.target}: the CLI's target is ${r.targetMacs} MACs, not ${run.target} x ${r.macsBefore}`);
  }
  const failed = runs.filter((r) => !r.report);
  for (const f of failed) warnings.push(`${f.method}@${f.target}: FAILED: ${f.error}`);

  const table = markdownTable(rows, baseline, layerNames);
  const checks = targetChecks(rows, baseline, flags.targets);
  const cpus = os.cpus();
  const settings = {
    model: MODEL,
    dataset: dataSpec,
    trainImages: meta.trainCount,
    testImages: meta.testCount,
    backend: BACKEND,
    baselineEpochs: flags.baselineEpochs,
    searchEpochs: flags.searchEpochs,
    finetuneEpochs: flags.finetuneEpochs,
    targets: flags.targets,
    maxTrain: flags.maxTrain ?? null,
    seed: flags.seed,
    batchSize: flags.batchSize,
    alpha: flags.alpha ?? runs.find((r) => r.alpha !== undefined)?.alpha ?? null,
    jobs: flags.jobs,
    baselineRecipe: { optimizer: 'SGD', momentum: MOMENTUM, learningRate: BASELINE_LR, schedule: 'cosine', weightDecay: WEIGHT_DECAY, augmentation: 'pad-crop 2 + horizontal flip' },
    cliLearningRates: 'search 0.02 constant, finetune 0.02 cosine (the CLI defaults)',
    baselineReused,
    layerNames,
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, os: `${os.type()} ${os.release()}`, node: process.version, tfjs: tf.version.tfjs, loadAverage: os.loadavg().map((v) => Number(v.toFixed(2))) },
  };
  const wallSeconds = (Date.now() - benchStarted) / 1000;
  const timings = {
    baseline: { wallSeconds: meta.wallSeconds, phaseSeconds: meta.phaseSeconds, reused: baselineReused },
    runs: runs.map((r) => ({ method: r.method, target: r.target, processSeconds: r.processSeconds, reportWallSeconds: r.report?.wallSeconds ?? null, phaseSeconds: r.phaseSeconds, reused: r.reused })),
  };
  // What explains a result: how far the search itself got towards the target (the rest was done
  // by the projection onto the budget), and the deploy-equivalence of every run.
  const diagnostics = runs.filter((r) => r.report).map((r) => ({
    method: r.method,
    target: r.target,
    searchEndMacsFraction: r.searchEndMacs !== undefined ? r.searchEndMacs / r.report!.macsBefore : null,
    projectionMoved: r.projectionMoved ?? null,
    accuracyMasked: r.report!.accuracyMasked,
    reparamMaxAbsDiff: r.report!.reparamMaxAbsDiff,
  }));
  fs.mkdirSync(flags.resultsDir, { recursive: true });
  await writeFileAtomic(path.join(flags.resultsDir, 'quality.json'), JSON.stringify({ rows, settings, checks, warnings, diagnostics, timings, wallSeconds }, null, 2) + '\n');
  const checkLines = checks.map((c) => `- ${c.pass === null ? 'N/A ' : c.pass ? 'PASS' : 'MISS'} ${c.name}: ${c.detail}`);
  const md = [
    '# PaS vs uniform and magnitude pruning on Fashion-MNIST',
    '',
    `${settings.date}; ${settings.machine.cpu} x${settings.machine.cores}; tfjs ${settings.machine.tfjs} ${BACKEND}; \`${MODEL}\` trained ${flags.baselineEpochs} epochs on ${meta.trainCount} images; ` +
      `PaS: ${flags.searchEpochs} search + ${flags.finetuneEpochs} fine-tune epochs, baselines: ${flags.finetuneEpochs} fine-tune epochs; seed ${flags.seed}; accuracy on the ${meta.testCount} test images.`,
    '',
    table,
    '',
    '## Target checks (targets, not assertions)',
    '',
    ...checkLines,
    ...(diagnostics.some((d) => d.searchEndMacsFraction !== null)
      ? ['', '## PaS search', '', ...diagnostics.filter((d) => d.searchEndMacsFraction !== null).map((d) => `- PaS at ${pct(d.target, 0)}: the search ended at ${pct(d.searchEndMacsFraction!, 1)} of the MACs; the projection onto the budget then moved ${d.projectionMoved} channel(s)`)]
      : []),
    ...(warnings.length > 0 ? ['', '## Warnings', '', ...warnings.map((w) => `- ${w}`)] : []),
    '',
    `Total wall time ${(wallSeconds / 60).toFixed(1)} min.`,
    '',
  ].join('\n');
  await writeFileAtomic(path.join(flags.resultsDir, 'quality.md'), md);

  process.stdout.write(`\n${table}\n\nTarget checks (targets, not assertions):\n${checkLines.join('\n')}\n`);
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
