import * as tf from '@tensorflow/tfjs';
import { batchCount, batches, type Split } from '../../data';
import { disposeMomentumOptimizer, weightDecayed, type EpochOptions, type EpochResult } from '../trainer';
import { ReplicaPool, type Shard } from './pool';
import { applyUpdate, movingStatIndices, readMovingStats, setMovingStats, shardGradients } from './shardStep';

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
  await pool.loadModel(model, trainable, statIndices);
  pool.newOptimizer(options.learningRate, options.momentum);
  const optimizer = tf.train.momentum(options.learningRate, options.momentum);
  const extra = (): tf.Scalar => {
    let loss = tf.scalar(0);
    if (options.extraLoss) loss = tf.add(loss, options.extraLoss());
    if (options.weightDecay > 0 && decayed.length > 0) {
      loss = tf.add(loss, tf.mul(tf.addN(decayed.map((v) => tf.sum(tf.square(v)))), options.weightDecay / 2));
    }
    return loss;
  };
  const total = batchCount(split, options.batchSize);
  const threads = pool.size + 1;
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let done = 0;
  let stopped = false;
  const started = Date.now();
  try {
    for (const { x, y, size } of batches(split, options.batchSize, { shuffle: true, seed: options.seed, epoch: options.epoch, augment: options.augment })) {
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
      const x0 = tf.slice(x, 0, sizes[0]);
      const y0 = tf.slice(y, 0, sizes[0]);
      const own = shardGradients(model, x0, y0, sizes[0] / size, variables, extra);
      tf.dispose([x, y, x0, y0]);
      const others = await replies;
      // Fixed summation order (this thread, then replica 1, 2, ...): deterministic for a seed and
      // a worker count, and computed once, so every replica applies the very same numbers.
      const gradients = own.gradients.map((g, i) => {
        const sum = Float32Array.from(g);
        for (const reply of others) {
          const other = reply.gradients[i];
          for (let k = 0; k < sum.length; k++) sum[k] += other[k];
        }
        return sum;
      });
      const ownStats = readMovingStats(model, statIndices);
      const movingStats = ownStats.map((s, i) => {
        const mean = Float32Array.from(s);
        for (let k = 0; k < mean.length; k++) {
          let total = s[k];
          for (const reply of others) total += reply.movingStats[i][k];
          mean[k] = total / (others.length + 1);
        }
        return mean;
      });
      pool.apply(done, gradients, movingStats);
      applyUpdate(optimizer, variables, gradients);
      setMovingStats(model, statIndices, movingStats);

      let batchLoss = own.crossEntropy * (sizes[0] / size) + own.extraLoss;
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
  } finally {
    disposeMomentumOptimizer(optimizer);
  }
  const seconds = (Date.now() - started) / 1000;
  // Each replica runs its whole share in one pass: the micro-batch is that share.
  return { loss: lossSum / Math.max(1, seen), accuracy: correct / Math.max(1, seen), batches: done, stopped, seconds, imagesPerSecond: seen / Math.max(1e-3, seconds), microBatch: Math.ceil(options.batchSize / Math.max(1, options.workers ?? 1)) };
}
