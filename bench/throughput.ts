/**
 * `npm run bench:throughput`: training and inference images/second at batch 64, for every
 * TensorFlow.js backend this machine can run and for PyTorch on the same machine, on three nets:
 * the reference net (bench/reference-net.ts), RepVGG-A0 x0.5 on 32x32x3 (both batch 64) and a
 * Keras-layers MobileNetV2 at 224x224x3 (bench/mobilenet-v2.ts; batch 4: larger batches abort the
 * wasm heap in training). wasm training is also measured through the engine's trainer with 1
 * worker and with one worker per core (data parallelism, src/engine/train/parallel).
 *
 * Writes bench/results/throughput.json and throughput.md, and prints the table with the
 * tfjs/PyTorch ratios of this run (machines are noisy: compare within one run).
 *
 * Options: --quick (one short round), --backends=wasm,cpu (subset), --no-torch, --nets=a,b (subset).
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import * as tf from '@tensorflow/tfjs';
import { initBackend, BackendInfo, BackendName } from '../src/engine/backends';
import { timeKernels } from '../src/engine/backends/kernel-timing';
import { ALL_NETS, BATCH, makeWorkload, timeSteps, type Mode, type NetName, type NetSpec } from './workloads';
import type { Split } from '../src/engine/data';
import { trainableVariables, trainEpoch } from '../src/engine/train/trainer';
import { closeSharedReplicaPool, coreCount, lastDataParallelProfile } from '../src/engine/train/parallel';


interface ThroughputRun {
  net: NetName;
  framework: 'tfjs' | 'pytorch';
  backend: BackendName | 'torch-cpu';
  mode: Mode;
  batch: number;
  imagesPerSecond: number;
  steps?: number;
  /** PyTorch runs: intra-op threads. */
  threads?: number;
  /** tfjs training through the engine's trainer: threads sharing each batch (data parallelism). */
  workers?: number;
  /**
   * Images per CPU-second of the process: for single-threaded runs (wasm, PyTorch with 1 thread)
   * this is the speed on a dedicated core, and much less sensitive to other jobs than wall time.
   */
  imagesPerCpuSecond?: number;
  /** Separate processes running this step at once (the two-process measurement); img/s is their sum. */
  processes?: number;
  /** Data-parallel runs: where a step's wall time went, ms per step (lastDataParallelProfile). */
  stepBreakdown?: Record<string, number>;
}

interface SkippedRun {
  net: NetName;
  backend: string;
  mode: Mode | 'all';
  reason: string;
}

interface KernelProfile {
  net: NetName;
  backend: BackendName;
  mode: Mode;
  stepMs: number;
  kernelMs: number;
  kernels: Array<{ name: string; ms: number; calls: number; share: number }>;
}

/** cpu training of a batch that would take longer than this is estimated, not run. */
const CPU_STEP_LIMIT_SECONDS = 60;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const withTorch = !args.includes('--no-torch');
const backendArg = args.find((a) => a.startsWith('--backends='));
const requestedBackends = (backendArg ? backendArg.slice('--backends='.length).split(',') : ['node-gpu', 'node', 'wasm', 'cpu']) as BackendName[];
const netsArg = args.find((a) => a.startsWith('--nets='));
const NETS = Object.fromEntries(
  Object.entries(ALL_NETS).filter(([name]) => !netsArg || netsArg.slice('--nets='.length).split(',').includes(name)),
) as Record<NetName, NetSpec>;
const minSeconds = quick ? 1.5 : 3;
const rounds = quick ? 1 : 3;

/** The repository root, whether this runs from bench/ (tsx) or dist/bench/ (bundle). */
function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

/** Times each kernel of one step (see kernel-timing.ts for why not tf.profile). */
function profileStep(net: NetName, backend: BackendName, mode: Mode, step: () => void): KernelProfile {
  step(); // warm: the profile should not see first-call setup
  const { totalMs, kernels } = timeKernels(tf.getBackend(), step);
  const kernelMs = kernels.reduce((sum, k) => sum + k.ms, 0);
  const top = kernels.slice(0, 14).map((k) => ({ name: k.name, ms: round(k.ms, 1), calls: k.calls, share: round(k.ms / totalMs, 3) }));
  top.push({ name: '(outside kernels: tfjs engine, tape, JS glue)', ms: round(totalMs - kernelMs, 1), calls: 0, share: round((totalMs - kernelMs) / totalMs, 3) });
  return { net, backend, mode, stepMs: round(totalMs, 1), kernelMs: round(kernelMs, 1), kernels: top };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Initializes a backend, or records why it is not available. */
async function tryBackend(backend: BackendName, skipped: SkippedRun[]): Promise<BackendInfo | undefined> {
  try {
    return await initBackend(backend);
  } catch (error) {
    skipped.push({ net: 'reference', backend, mode: 'all', reason: (error as Error).message });
    console.log(`- ${backend}: not available (${(error as Error).message})`);
    return undefined;
  }
}

/** One round of a fast backend: both nets, both modes, and a kernel profile of each. */
async function benchFastBackend(backend: BackendName, runs: ThroughputRun[], profiles: KernelProfile[]): Promise<void> {
  await initBackend(backend);
  for (const net of Object.keys(NETS) as NetName[]) {
    const batch = NETS[net].batch;
    const work = makeWorkload(net, batch);
    for (const mode of ['infer', 'train'] as const) {
      const timing = timeSteps(work[mode], batch, minSeconds, 3);
      runs.push({ net, framework: 'tfjs', backend, mode, batch, imagesPerSecond: timing.imagesPerSecond, imagesPerCpuSecond: timing.imagesPerCpuSecond, steps: timing.steps });
      console.log(`- ${backend} ${net} ${mode}: ${timing.imagesPerSecond.toFixed(1)} img/s`);
      profiles.push(profileStep(net, backend, mode, work[mode]));
    }
    work.dispose();
    if (backend === 'wasm') {
      runs.push(benchHalfBatch(net));
      runs.push(await benchTwoProcesses(net));
      for (const workers of [1, Math.max(2, coreCount())]) runs.push(await benchTrainer(net, workers));
    }
  }
}

/**
 * The bare training step on one thread at half the batch: what each of two data-parallel threads
 * computes. A step has costs that do not shrink with the batch (one call per kernel, per-call
 * setup inside XNNPACK, small layers), so a half batch takes more than half the time, and
 * 2 * (half-batch img/s) / (full-batch img/s) is what two workers could give at most on this net,
 * with free communication and two equally fast cores. (An estimate: the bare step pays a whole SGD
 * update at either batch, where two workers split theirs.)
 */
function benchHalfBatch(net: NetName): ThroughputRun {
  const batch = NETS[net].batch / 2;
  const work = makeWorkload(net, batch);
  const timing = timeSteps(work.train, batch, minSeconds, 3);
  work.dispose();
  console.log(`- wasm ${net} train at half the batch (${batch}): ${timing.imagesPerSecond.toFixed(1)} img/s`);
  return { net, framework: 'tfjs', backend: 'wasm', mode: 'train', batch, imagesPerSecond: timing.imagesPerSecond, imagesPerCpuSecond: timing.imagesPerCpuSecond, steps: timing.steps };
}

/**
 * Two processes (concurrent-step.ts), each computing a half batch's gradients at the same time:
 * their summed img/s over one thread's full-batch training img/s is what plain process-level
 * parallelism gets on this machine (each worker computes that much, then they share the update).
 * It shows what the half-batch ceiling leaves out: how fast the two cores are when both are busy.
 * Not a strict bound: each process brings its own V8 helper threads to the same two cores.
 */
async function benchTwoProcesses(net: NetName): Promise<ThroughputRun> {
  const batch = NETS[net].batch / 2;
  const candidates = [path.join(__dirname, 'concurrent-step.js'), path.join(repoRoot(), 'dist', 'bench', 'concurrent-step.js')];
  const script = candidates.find((file) => fs.existsSync(file));
  if (!script) throw new Error(`concurrent-step.js is missing (looked for ${candidates.join(', ')}); run \`node esbuild.js\``);
  const twins = [0, 1].map(() => spawn(process.execPath, [script, net, String(batch), String(minSeconds)], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const lines = twins.map((child) => readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]());
  const nextLine = async (twin: number): Promise<string> => {
    const { value, done } = await lines[twin].next();
    if (done) throw new Error(`concurrent-step (twin ${twin + 1}) exited before it reported`);
    return value as string;
  };
  // Both warmed up ("ready"), then released at once.
  await Promise.all([0, 1].map(nextLine));
  for (const child of twins) child.stdin!.write('go\n');
  const results = [0, 1].map(nextLine);
  const speeds = (await Promise.all(results)).map((line) => (JSON.parse(line) as { imagesPerSecond: number }).imagesPerSecond);
  const imagesPerSecond = speeds.reduce((a, b) => a + b, 0);
  console.log(`- wasm ${net} gradients at half the batch (${batch}) in 2 processes at once: ${speeds.map((v) => v.toFixed(1)).join(' + ')} = ${imagesPerSecond.toFixed(1)} img/s`);
  return { net, framework: 'tfjs', backend: 'wasm', mode: 'train', batch, imagesPerSecond, processes: 2 };
}

/**
 * Training through the engine's trainer (`trainEpoch`: batching, SGD momentum, weight decay) with
 * `workers` threads sharing each batch: one warm-up epoch (starts the replicas), then one timed
 * epoch of `parallelSteps` batches of random data.
 */
async function benchTrainer(net: NetName, workers: number): Promise<ThroughputRun> {
  const spec = NETS[net];
  const model = spec.build();
  const imageSize = spec.inputShape[0] * spec.inputShape[1] * spec.inputShape[2];
  const split = (steps: number): Split => {
    const count = steps * spec.batch;
    const images = new Float32Array(count * imageSize);
    for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 12.9898) * 0.5;
    return { images, labels: Int32Array.from({ length: count }, (_, i) => i % spec.classes), count, imageShape: spec.inputShape, numClasses: spec.classes };
  };
  const epoch = (data: Split, index: number) =>
    trainEpoch(model, data, { batchSize: spec.batch, learningRate: 0.01, momentum: 0.9, weightDecay: 1e-4, seed: 1, epoch: index, variables: trainableVariables(model), workers });
  await epoch(split(2), 0);
  const timed = split(spec.parallelSteps);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  await epoch(timed, 1);
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  model.dispose();
  const profile = workers > 1 ? lastDataParallelProfile() : undefined;
  const stepBreakdown = profile && profile.steps > 0
    ? Object.fromEntries(Object.entries(profile).filter(([key]) => key !== 'steps').map(([key, ms]) => [key.replace(/Ms$/, ''), round(ms / profile.steps, 1)]))
    : undefined;
  const imagesPerSecond = timed.count / seconds;
  console.log(`- wasm ${net} train, trainer with ${workers} worker(s): ${imagesPerSecond.toFixed(1)} img/s`);
  return { net, framework: 'tfjs', backend: 'wasm', mode: 'train', batch: spec.batch, imagesPerSecond, imagesPerCpuSecond: timed.count / ((cpu.user + cpu.system) / 1e6), steps: spec.parallelSteps, workers, stepBreakdown };
}

/** The cpu backend, once: a couple of inference steps; training only where one step is short. */
async function benchCpu(runs: ThroughputRun[], skipped: SkippedRun[]): Promise<void> {
  await initBackend('cpu');
  for (const net of Object.keys(NETS) as NetName[]) {
    if (net === 'mobilenetv2-224') continue; // minutes per step on the pure-JS backend
    const work = makeWorkload(net, BATCH);
    const infer = timeSteps(work.infer, BATCH, 0, 1, 2);
    runs.push({ net, framework: 'tfjs', backend: 'cpu', mode: 'infer', batch: BATCH, imagesPerSecond: infer.imagesPerSecond, steps: infer.steps });
    console.log(`- cpu ${net} infer: ${infer.imagesPerSecond.toFixed(1)} img/s`);
    // Estimate a batch-64 training step from one batch-4 step before committing to it.
    const small = makeWorkload(net, 4);
    const start = performance.now();
    small.train();
    const estimatedSeconds = ((performance.now() - start) / 1000) * (BATCH / 4);
    small.dispose();
    if (estimatedSeconds > CPU_STEP_LIMIT_SECONDS) {
      const reason = `one batch-${BATCH} training step would take about ${estimatedSeconds.toFixed(0)} s (estimated from one batch-4 step: ${(BATCH / estimatedSeconds).toFixed(2)} img/s)`;
      skipped.push({ net, backend: 'cpu', mode: 'train', reason });
      console.log(`- cpu ${net} train: skipped, ${reason}`);
    } else {
      const train = timeSteps(work.train, BATCH, 0, 0, 1);
      runs.push({ net, framework: 'tfjs', backend: 'cpu', mode: 'train', batch: BATCH, imagesPerSecond: train.imagesPerSecond, steps: train.steps });
      console.log(`- cpu ${net} train: ${train.imagesPerSecond.toFixed(1)} img/s`);
    }
    work.dispose();
  }
}

function benchTorch(skipped: SkippedRun[]): { runs: ThroughputRun[]; version?: string } {
  if (!withTorch) return { runs: [] };
  const script = path.join(repoRoot(), 'bench', 'torch_reference.py');
  const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const result = spawnSync(python, [script, '--threads', '1', '2', '--seconds', String(minSeconds / 2), '--nets', ...Object.keys(NETS)], { encoding: 'utf8', timeout: 900_000 });
  const line = (result.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(line) as { error?: string; torch?: string; runs?: ThroughputRun[] };
    if (parsed.error) throw new Error(parsed.error);
    return { runs: parsed.runs ?? [], version: parsed.torch };
  } catch (error) {
    const reason = `PyTorch reference did not run: ${(error as Error).message || result.stderr}`.slice(0, 400);
    console.log(`- ${reason}`);
    skipped.push({ net: 'reference', backend: 'torch-cpu', mode: 'all', reason });
    return { runs: [] };
  }
}

/** Best of the rounds per measurement: other processes on a shared machine only slow runs down. */
function bestOfRounds(samples: ThroughputRun[]): Array<ThroughputRun & { samples: number[] }> {
  const best = new Map<string, ThroughputRun & { samples: number[] }>();
  for (const run of samples) {
    const key = [run.net, run.framework, run.backend, run.mode, run.batch, run.threads ?? '', run.workers ?? '', run.processes ?? ''].join('|');
    const entry = best.get(key);
    if (!entry) best.set(key, { ...run, samples: [run.imagesPerSecond] });
    else {
      entry.samples.push(run.imagesPerSecond);
      const bestCpu = Math.max(entry.imagesPerCpuSecond ?? 0, run.imagesPerCpuSecond ?? 0) || undefined;
      if (run.imagesPerSecond > entry.imagesPerSecond) Object.assign(entry, { ...run, samples: entry.samples });
      entry.imagesPerCpuSecond = bestCpu;
    }
  }
  return [...best.values()];
}

interface RatioRow {
  net: NetName;
  mode: Mode;
  backend: string;
  /** Training through the engine's trainer with this many threads; undefined: the plain minimize step on one thread. */
  workers?: number;
  imagesPerSecond: number;
  /** PyTorch with 2 threads, the reference configuration. */
  torch2?: number;
  ratio?: number;
  /** PyTorch with 1 thread, for a loaded machine where 2 threads contend. */
  torch1?: number;
  ratioVsOneThread?: number;
  /** Images per CPU-second, tfjs and PyTorch 1 thread: the load-independent comparison. */
  cpuSecond?: number;
  torch1CpuSecond?: number;
  ratioPerCpuSecond?: number;
}

function ratioRows(runs: ThroughputRun[]): RatioRow[] {
  const torchRun = (r: ThroughputRun, threads: number) =>
    runs.find((t) => t.framework === 'pytorch' && t.net === r.net && t.mode === r.mode && (t.threads ?? 2) === threads);
  const torch = (r: ThroughputRun, threads: number) => torchRun(r, threads)?.imagesPerSecond;
  return runs
    .filter((r) => r.framework === 'tfjs' && !isHalfBatch(r))
    .map((r) => {
      const torch2 = torch(r, 2);
      const torch1 = torch(r, 1);
      return {
        net: r.net,
        mode: r.mode,
        backend: r.backend,
        workers: r.workers,
        imagesPerSecond: r.imagesPerSecond,
        torch2,
        ratio: torch2 ? r.imagesPerSecond / torch2 : undefined,
        torch1,
        ratioVsOneThread: torch1 ? r.imagesPerSecond / torch1 : undefined,
        cpuSecond: r.imagesPerCpuSecond,
        torch1CpuSecond: torchRun(r, 1)?.imagesPerCpuSecond,
        ratioPerCpuSecond: r.imagesPerCpuSecond && torchRun(r, 1)?.imagesPerCpuSecond ? r.imagesPerCpuSecond / torchRun(r, 1)!.imagesPerCpuSecond! : undefined,
      };
    });
}

function isHalfBatch(run: ThroughputRun): boolean {
  return run.framework === 'tfjs' && run.batch !== NETS[run.net].batch;
}

interface ScalingRow {
  net: NetName;
  fullBatch: number;
  halfBatch: number;
  /** 2 * half-batch img/s / full-batch img/s: the most two workers could give. */
  ceiling: number;
  /** Two processes computing half-batch gradients at once: summed img/s, and that over full-batch img/s. */
  twoProcesses?: number;
  twoProcessSpeedUp?: number;
  oneWorker?: number;
  twoWorkers?: number;
  /** Trainer with 2 workers over trainer with 1. */
  speedUp?: number;
}

/** Per net on wasm: the two-worker speed-up measured, and the ceiling the half-batch step sets. */
function scalingRows(runs: ThroughputRun[]): ScalingRow[] {
  const tfjsTrain = runs.filter((r) => r.framework === 'tfjs' && r.backend === 'wasm' && r.mode === 'train');
  return tfjsTrain.filter((r) => isHalfBatch(r) && r.processes === undefined).flatMap((half) => {
    const full = tfjsTrain.find((r) => r.net === half.net && r.workers === undefined && !isHalfBatch(r));
    if (!full) return [];
    const twoProcesses = tfjsTrain.find((r) => r.net === half.net && r.processes === 2)?.imagesPerSecond;
    const oneWorker = tfjsTrain.find((r) => r.net === half.net && r.workers === 1)?.imagesPerSecond;
    const twoWorkers = tfjsTrain.find((r) => r.net === half.net && r.workers === 2)?.imagesPerSecond;
    return [{
      net: half.net,
      fullBatch: full.imagesPerSecond,
      halfBatch: half.imagesPerSecond,
      ceiling: (2 * half.imagesPerSecond) / full.imagesPerSecond,
      twoProcesses,
      twoProcessSpeedUp: twoProcesses ? twoProcesses / full.imagesPerSecond : undefined,
      oneWorker,
      twoWorkers,
      speedUp: oneWorker && twoWorkers ? twoWorkers / oneWorker : undefined,
    }];
  });
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined ? 'n/a' : value.toFixed(digits);
}

function markdown(report: { date: string; machine: Record<string, unknown>; runs: ThroughputRun[]; skipped: SkippedRun[]; profiles: KernelProfile[] }): string {
  const lines = [
    `# Throughput (batch ${BATCH}; mobilenetv2-224 batch ${ALL_NETS['mobilenetv2-224'].batch})`,
    '',
    `${report.date}; ${String(report.machine.cpuModel)} x${String(report.machine.cpus)}, load average at start ${String(report.machine.loadAverage)}; tfjs ${tf.version.tfjs}, PyTorch ${String(report.machine.torch ?? 'n/a')}.`,
    '',
    `Best of ${String(report.machine.rounds)} interleaved round(s) per figure.`,
    '',
    'img/s: wall clock. img/CPU-s: per CPU-second of the process, i.e. the speed of one dedicated core (single-threaded runs only; robust to other jobs).',
    '',
    'workers: "-" is the bare training step (minimize) on one thread; a number is the engine\'s trainer (trainEpoch) with that many threads sharing each batch (data parallelism).',
    '',
    '| net | mode | tfjs backend | workers | tfjs img/s | PyTorch 2 threads | tfjs / PyTorch | PyTorch 1 thread | tfjs / PyTorch 1t | tfjs img/CPU-s | PyTorch 1t img/CPU-s | ratio per CPU-s |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...ratioRows(report.runs).map(
      (r) =>
        `| ${r.net} | ${r.mode} | ${r.backend} | ${r.workers ?? '-'} | ${r.imagesPerSecond.toFixed(1)} | ${fixed(r.torch2, 1)} | ${fixed(r.ratio, 2)} | ${fixed(r.torch1, 1)} | ${fixed(r.ratioVsOneThread, 2)} | ${fixed(r.cpuSecond, 1)} | ${fixed(r.torch1CpuSecond, 1)} | ${fixed(r.ratioPerCpuSecond, 2)} |`,
    ),
  ];
  if (report.skipped.length > 0) lines.push('', 'Not measured:', '', ...report.skipped.map((s) => `- ${s.backend} ${s.net} ${s.mode}: ${s.reason}`));
  const scaling = scalingRows(report.runs);
  if (scaling.length > 0) {
    lines.push(
      '',
      '## Two workers: the speed-up, and the most the net allows',
      '',
      'Each of two workers computes half the batch. The bare step on one thread at the full and at half the batch gives the ceiling: 2 x (half-batch img/s) / (full-batch img/s), the speed-up with free communication and two equally fast cores. It is an estimate: the bare step pays a whole SGD update at either batch, where two workers split theirs, so a lucky run can land slightly above it. The two-process speed-up shows what the two cores of this machine give when both are busy: two separate processes compute half-batch gradients at the same time (nothing exchanged, nothing awaited, no update), and their summed img/s is divided by the full-batch training figure. It is a reference point, not a strict bound: each process also runs its own V8 helper threads on the same two cores. The measured speed-up is the trainer with 2 workers over the trainer with 1.',
      '',
      '| net | 1 thread, full batch img/s | 1 thread, half batch img/s | ceiling | 2 processes, half-batch gradients each, summed img/s | 2-process speed-up | trainer 1 worker | trainer 2 workers | speed-up | share of the ceiling |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...scaling.map((r) => `| ${r.net} | ${r.fullBatch.toFixed(1)} | ${r.halfBatch.toFixed(1)} | ${r.ceiling.toFixed(2)}x | ${fixed(r.twoProcesses, 1)} | ${r.twoProcessSpeedUp === undefined ? 'n/a' : `${r.twoProcessSpeedUp.toFixed(2)}x`} | ${fixed(r.oneWorker, 1)} | ${fixed(r.twoWorkers, 1)} | ${r.speedUp === undefined ? 'n/a' : `${r.speedUp.toFixed(2)}x`} | ${r.speedUp === undefined ? 'n/a' : `${((r.speedUp - 1) / Math.max(1e-9, r.ceiling - 1) * 100).toFixed(0)}%`} |`),
    );
  }
  const parallel = report.runs.filter((r) => r.stepBreakdown);
  if (parallel.length > 0) {
    const keys = Object.keys(parallel[0].stepBreakdown!);
    lines.push(
      '',
      '## Data-parallel step: where the wall time went (ms per step, the fastest round)',
      '',
      'prepare: batch read-back and shards; ownCompute: main thread forward + backward (+ budget loss and weight decay) of its shard; wait: main thread idle until the slowest replica replied; reduce: summing the gradients into the SGD-momentum update (main thread only); apply: copying the update into the main model; replicaCompute / replicaApply: the same on a replica (mean over replicas).',
      '',
      `| net | workers | ${keys.join(' | ')} |`,
      `| --- | ---: | ${keys.map(() => '---:').join(' | ')} |`,
      ...parallel.map((r) => `| ${r.net} | ${r.workers} | ${keys.map((k) => r.stepBreakdown![k]).join(' | ')} |`),
    );
  }
  for (const p of report.profiles) {
    lines.push('', `## Kernel profile: ${p.net}, ${p.mode}, ${p.backend} (CPU time of the quickest profiled step of the rounds: ${p.stepMs} ms, in kernels ${p.kernelMs} ms)`, '', '| kernel | ms | calls | share of step |', '| --- | ---: | ---: | ---: |');
    lines.push(...p.kernels.map((k) => `| ${k.name} | ${k.ms} | ${k.calls} | ${(k.share * 100).toFixed(1)}% |`));
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const samples: ThroughputRun[] = [];
  const skipped: SkippedRun[] = [];
  const profiles: KernelProfile[] = [];
  const loadAverage = os.loadavg().map((l) => round(l, 2));
  const backends: BackendInfo[] = [];
  for (const backend of requestedBackends) {
    const info = await tryBackend(backend, skipped);
    if (info) backends.push(info);
  }
  const fast = backends.filter((b) => b.name !== 'cpu').map((b) => b.name);
  // PyTorch and tfjs alternate, so that a busy spell on a shared machine hits both.
  let torchVersion: string | undefined;
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}/${rounds}: PyTorch...`);
    const torch = benchTorch(round === 1 ? skipped : []);
    torchVersion ??= torch.version;
    samples.push(...torch.runs);
    for (const backend of fast) await benchFastBackend(backend, samples, profiles);
  }
  if (backends.some((b) => b.name === 'cpu')) await benchCpu(samples, skipped);
  const runs = bestOfRounds(samples);
  // Likewise the profile: keep the quickest profiled step of each kind.
  const quickestProfiles = [...new Map(
    [...profiles].sort((a, b) => b.stepMs - a.stepMs).map((p) => [`${p.net}|${p.backend}|${p.mode}`, p] as const),
  ).values()];
  const report = {
    date: new Date().toISOString(),
    machine: {
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      cpus: os.cpus().length,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
      tfjs: tf.version.tfjs,
      torch: torchVersion,
      loadAverage,
      loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)),
      rounds,
    },
    backends,
    runs: runs.map((r) => ({ ...r, imagesPerSecond: round(r.imagesPerSecond, 1), imagesPerCpuSecond: r.imagesPerCpuSecond && round(r.imagesPerCpuSecond, 1), samples: r.samples.map((v) => round(v, 1)) })),
    ratios: ratioRows(runs).map((r) => ({
      ...r,
      imagesPerSecond: round(r.imagesPerSecond, 1),
      torch2: r.torch2 && round(r.torch2, 1),
      ratio: r.ratio && round(r.ratio, 3),
      torch1: r.torch1 && round(r.torch1, 1),
      ratioVsOneThread: r.ratioVsOneThread && round(r.ratioVsOneThread, 3),
      cpuSecond: r.cpuSecond && round(r.cpuSecond, 1),
      torch1CpuSecond: r.torch1CpuSecond && round(r.torch1CpuSecond, 1),
      ratioPerCpuSecond: r.ratioPerCpuSecond && round(r.ratioPerCpuSecond, 3),
    })),
    scaling: scalingRows(runs).map((r) => ({ ...r, fullBatch: round(r.fullBatch, 1), halfBatch: round(r.halfBatch, 1), ceiling: round(r.ceiling, 3), twoProcesses: r.twoProcesses && round(r.twoProcesses, 1), twoProcessSpeedUp: r.twoProcessSpeedUp && round(r.twoProcessSpeedUp, 3), oneWorker: r.oneWorker && round(r.oneWorker, 1), twoWorkers: r.twoWorkers && round(r.twoWorkers, 1), speedUp: r.speedUp && round(r.speedUp, 3) })),
    skipped,
    profiles: quickestProfiles,
  };
  await closeSharedReplicaPool();
  const outDir = path.join(repoRoot(), 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'throughput.json'), JSON.stringify(report, null, 2) + '\n');
  const md = markdown(report);
  fs.writeFileSync(path.join(outDir, 'throughput.md'), md);
  console.log('\n' + md.split('\n## ').filter((part, i) => i === 0 || part.startsWith('Two workers')).join('\n## '));
  console.log(`wrote ${path.join(outDir, 'throughput.json')} and throughput.md`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
