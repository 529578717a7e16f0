import * as tf from '@tensorflow/tfjs';
import { batchCount, batches, type Split } from '../../data';
import { weightDecayed, type EpochOptions, type EpochResult } from '../trainer';
import { createExchange, ExchangeViews } from './exchange';
import { ReplicaPool, type Shard } from './pool';
import { assignFlat, averageInto, decayRangesOf, FlatMomentum, flatLayout, movingStatIndices, readFlat, readLayerWeights, writeLayerWeights, shardGradients, updateRanges, weightsAt } from './shardStep';

/** Where the time of the data-parallel steps went (milliseconds summed over the steps of the last epoch). */
export interface StepProfile {
  steps: number;
  /** Batch read-back and slicing into shards. */
  prepareMs: number;
  /** Main thread: forward + backward + gradient read-back of its shard (extra terms included). */
  ownComputeMs: number;
  /** Main thread: waiting for the slowest replica after its own shard. */
  waitMs: number;
  /** Main thread: summing gradients and averaging moving statistics. */
  reduceMs: number;
  /** Main thread: posting the update and applying it. */
  applyMs: number;
  /** Replicas (mean over them): forward + backward + read-back, and applying the update. */
  replicaComputeMs: number;
  replicaApplyMs: number;
  /** Wall time of the epoch's steps. */
  totalMs: number;
}

let lastProfile: StepProfile | undefined;
/** The step-time breakdown of the last data-parallel epoch (bench/throughput.ts prints it). */
export function lastDataParallelProfile(): StepProfile | undefined {
  return lastProfile;
}

/** Contiguous shard sizes of a batch of `size` over `parts` replicas (the first ones take the remainder); no empty shards. */
export function shardSizes(size: number, parts: number): number[] {
  const used = Math.min(size, parts);
  const base = Math.floor(size / used);
  return Array.from({ length: used }, (_, i) => base + (i < size % used ? 1 : 0));
}

/**
 * One epoch like `trainEpoch`, with every batch split over the main thread and the pool's
 * replicas (see protocol.ts for one step). The loss is the same function of the batch as on one
 * thread, except that BatchNorm normalizes each shard with the shard's own statistics (as
 * PyTorch's DistributedDataParallel does without SyncBatchNorm); the moving averages are the mean
 * over the replicas, identical everywhere. The extra terms (MACs budget, weight decay) are
 * computed once, by the main thread.
 */
export async function trainEpochDataParallel(model: tf.LayersModel, split: Split, options: EpochOptions, pool: ReplicaPool): Promise<EpochResult> {
  const variables = options.variables;
  const decayed = weightDecayed(variables);
  const indexOfVariable = new Map(model.weights.map((w, i) => [(w.read() as tf.Variable).name, i]));
  const trainable = variables.map((v) => {
    const index = indexOfVariable.get(v.name);
    if (index === undefined) throw new Error(`data-parallel training: variable ${v.name} is not a weight of the model`);
    return index;
  });
  const statIndices = movingStatIndices(model);
  const stats = weightsAt(model, statIndices);
  const layout = flatLayout(variables.map((v) => v.shape));
  const statLayout = flatLayout(stats.map((w) => w.shape as number[]));
  const threads = pool.size + 1;
  const weightLength = flatLayout(model.weights.map((w) => w.shape as number[])).total;
  const { exchange, optimizer } = epochBuffersFor(threads, layout.total, statLayout.total, weightLength);
  await pool.loadModel(model, trainable, statIndices, exchange);
  // A fresh optimizer state per epoch, as in the single-thread trainer.
  optimizer.reset(options.learningRate, options.momentum);
  // The MACs-budget term goes through the tape; weight decay is added to the gradients inside
  // the update, each thread over its own range, so that it costs no tensor ops.
  const extra = options.extraLoss;
  const decay = { rate: options.weightDecay > 0 ? options.weightDecay : 0, ranges: decayRangesOf(variables, decayed, layout) };
  const total = batchCount(split, options.batchSize);
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let done = 0;
  let stopped = false;
  const started = Date.now();
  const profile: StepProfile = { steps: 0, prepareMs: 0, ownComputeMs: 0, waitMs: 0, reduceMs: 0, applyMs: 0, replicaComputeMs: 0, replicaApplyMs: 0, totalMs: 0 };
  lastProfile = profile;
  for (const { x, y, size } of batches(split, options.batchSize, { shuffle: true, seed: options.seed, epoch: options.epoch, augment: options.augment })) {
    const t0 = performance.now();
    const sizes = shardSizes(size, threads);
    const xData = x.dataSync() as Float32Array;
    const yData = y.dataSync() as Float32Array;
    const imageSize = xData.length / size;
    const classes = yData.length / size;
    const shards: Shard[] = [];
    let offset = sizes[0];
    for (const n of sizes.slice(1)) {
      shards.push({
        x: xData.slice(offset * imageSize, (offset + n) * imageSize),
        xShape: [n, ...x.shape.slice(1)],
        y: yData.slice(offset * classes, (offset + n) * classes),
        yShape: [n, classes],
        scale: n / size,
      });
      offset += n;
    }
    // The replicas start on their shards while this thread computes its own.
    const replies = pool.computeShards(done, shards);
    const t1 = performance.now();
    const x0 = tf.slice(x, 0, sizes[0]);
    const y0 = tf.slice(y, 0, sizes[0]);
    const own = shardGradients(model, x0, y0, sizes[0] / size, variables, exchange.gradientSlots[0], layout, extra);
    tf.dispose([x, y, x0, y0]);
    readLayerWeights(stats, exchange.statSlots[0], statLayout);
    const t2 = performance.now();
    const others = await replies;
    const t3 = performance.now();
    // The update starts from this thread's current weights (so a change made between steps, e.g.
    // clipped latents, is kept) and sums the gradients in a fixed order (this thread, then replica
    // 1, 2, ...): deterministic for a seed and a worker count. The threads split it into ranges,
    // each updating its range of the exchange's weights in place; each element's result is the
    // same whichever thread computes it. Every replica copies it.
    const used = others.length + 1;
    readFlat(variables, exchange.weights, layout);
    const ranges = updateRanges(layout.total, used);
    const reduced = pool.reduce(done, ranges.slice(1), used, options.learningRate, options.momentum, decay);
    const ownSquares = optimizer.apply(exchange.weights, exchange.gradientSlots.slice(0, used), 0, ranges[0][1], decay);
    averageInto(exchange.stats, exchange.statSlots.slice(0, used));
    const decayLoss = (decay.rate / 2) * (ownSquares + (await reduced));
    const t4 = performance.now();
    pool.apply(done);
    assignFlat(variables, exchange.weights, layout);
    writeLayerWeights(stats, exchange.stats, statLayout);
    const t5 = performance.now();
    profile.steps++;
    profile.prepareMs += t1 - t0;
    profile.ownComputeMs += t2 - t1;
    profile.waitMs += t3 - t2;
    profile.reduceMs += t4 - t3;
    profile.applyMs += t5 - t4;
    profile.totalMs += t5 - t0;
    profile.replicaComputeMs += others.reduce((sum, r) => sum + r.computeMs, 0) / Math.max(1, others.length);
    profile.replicaApplyMs += others.reduce((sum, r) => sum + r.applyMs, 0) / Math.max(1, others.length);

    let batchLoss = own.crossEntropy * (sizes[0] / size) + own.extraLoss + decayLoss;
    others.forEach((reply, i) => (batchLoss += reply.loss * shards[i].scale));
    lossSum += batchLoss * size;
    correct += own.correct + others.reduce((sum, r) => sum + r.correct, 0);
    seen += size;
    done++;
    options.onBatch?.({ batch: done, batches: total, loss: lossSum / seen, accuracy: correct / seen, imagesPerSecond: seen / Math.max(1e-3, (Date.now() - started) / 1000) });
    // As in trainEpoch: let signal handlers and pipe writes run between steps.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (options.shouldStop?.()) {
      stopped = true;
      break;
    }
  }
  const seconds = (Date.now() - started) / 1000;
  // Each replica runs its whole share in one pass: the micro-batch is that share.
  return { loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen), batches: done, stopped, seconds, imagesPerSecond: seen / Math.max(1e-3, seconds), microBatch: Math.ceil(options.batchSize / Math.max(1, options.workers ?? 1)) };
}

interface EpochBuffers {
  exchange: ExchangeViews;
  optimizer: FlatMomentum;
}

let cached: EpochBuffers | undefined;

/**
 * The shared exchange and this thread's flat vectors for this shape, kept while the shape stays (one
 * model across a search's epochs): made per epoch they were several model-sized arrays of garbage
 * each epoch, which V8 let grow resident memory before collecting them.
 */
function epochBuffersFor(threads: number, gradientLength: number, statLength: number, weightLength: number): EpochBuffers {
  const buffers = cached?.exchange.buffers;
  if (cached && buffers && buffers.threads === threads && buffers.gradientLength === gradientLength && buffers.statLength === statLength && buffers.weightLength === weightLength) return cached;
  const exchange = new ExchangeViews(createExchange(threads, gradientLength, statLength, weightLength));
  cached = { exchange, optimizer: new FlatMomentum(exchange.accumulation) };
  return cached;
}
