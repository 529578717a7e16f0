import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import type { Split } from '../../src/engine/data';
import { trainableVariables, trainEpoch, type EpochOptions } from '../../src/engine/train/trainer';
import { closeSharedReplicaPool, parseWorkers, resolveWorkers, shardSizes, sharedReplicaPool } from '../../src/engine/train/parallel';
import { maxAbs, maxAbsDiff, seededValues } from '../support/tensors';

/** 40 seeded 12x12x1 images, 4 classes: a few batches are enough to see replicas drift. */
function smallSplit(): Split {
  const count = 40;
  return {
    images: seededValues(count * 12 * 12, 11),
    labels: Int32Array.from({ length: count }, (_, i) => i % 4),
    count,
    imageShape: [12, 12, 1],
    numClasses: 4,
  };
}

function buildNet(withBatchNorm: boolean): tf.LayersModel {
  const init = (seed: number) => tf.initializers.heNormal({ seed });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 1], filters: 6, kernelSize: 3, strides: 2, padding: 'same', useBias: !withBatchNorm, kernelInitializer: init(1) }),
      ...(withBatchNorm ? [tf.layers.batchNormalization({ momentum: 0.8 })] : []),
      tf.layers.reLU(),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: init(2) }),
      tf.layers.reLU(),
      tf.layers.flatten(),
      tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
    ],
  });
}

function epochOptions(model: tf.LayersModel, workers: number, extra: Partial<EpochOptions> = {}): EpochOptions {
  return { batchSize: 16, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3, seed: 7, epoch: 0, variables: trainableVariables(model), workers, ...extra };
}

const weightsOf = (model: tf.LayersModel) => model.weights.map((w) => Float32Array.from(w.read().dataSync() as Float32Array));

describe('data-parallel training (worker threads, wasm)', function () {
  this.timeout(300_000);
  before(async () => {
    await initBackend('wasm');
  });
  after(async () => {
    await closeSharedReplicaPool();
  });

  it('splits a batch into contiguous shards that cover it exactly, never an empty one', () => {
    for (const [size, parts] of [[16, 2], [17, 2], [1, 2], [5, 3], [64, 16]]) {
      const sizes = shardSizes(size, parts);
      assert.equal(sizes.reduce((a, b) => a + b, 0), size);
      assert.ok(sizes.every((n) => n >= 1) && sizes.length === Math.min(size, parts));
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1);
    }
  });

  it('resolves --workers: auto is the core count on wasm, 1 on other backends', () => {
    assert.ok(resolveWorkers('auto', 'wasm') >= 1);
    assert.equal(resolveWorkers(3, 'wasm'), 3);
    assert.equal(resolveWorkers('auto', 'node'), 1);
    assert.equal(parseWorkers('auto'), 'auto');
    assert.equal(parseWorkers('2'), 2);
    assert.equal(parseWorkers('0'), undefined);
    assert.equal(parseWorkers('two'), undefined);
  });

  it('keeps every replica bitwise identical to the main model after several steps (BN moving stats included)', async () => {
    const model = buildNet(true);
    const result = await trainEpoch(model, smallSplit(), epochOptions(model, 2));
    assert.equal(result.batches, 3);
    const main = weightsOf(model);
    const replicas = await (await sharedReplicaPool(1)).weights();
    assert.equal(replicas.length, 1);
    main.forEach((w, i) => assert.equal(maxAbsDiff(w, replicas[0][i]), 0, `weight ${model.weights[i].originalName} differs between replicas`));
    model.dispose();
  });

  it('is deterministic for a seed and a worker count', async () => {
    const runs: Float32Array[][] = [];
    for (let run = 0; run < 2; run++) {
      const model = buildNet(true);
      await trainEpoch(model, smallSplit(), epochOptions(model, 2));
      runs.push(weightsOf(model));
      model.dispose();
    }
    runs[0].forEach((w, i) => assert.equal(maxAbsDiff(w, runs[1][i]), 0));
  });

  it('computes the same update as one thread (no BN), with the extra loss and weight decay counted once', async () => {
    // The extra term is large on purpose: counted once per replica, it would double its pull.
    const results: Float32Array[][] = [];
    for (const workers of [1, 2]) {
      const model = buildNet(false);
      const target = model.layers[0].weights[0].read() as tf.Variable;
      const extraLoss = () => tf.mul(tf.sum(tf.square(target)), 0.5) as tf.Scalar;
      await trainEpoch(model, smallSplit(), epochOptions(model, workers, { extraLoss }));
      results.push(weightsOf(model));
      model.dispose();
    }
    results[0].forEach((single, i) => {
      const scale = maxAbs(single);
      const diff = maxAbsDiff(single, results[1][i]);
      // Only the order of float additions differs (shard sums): a relative error near 1e-6.
      assert.ok(diff <= 1e-5 * scale, `weight ${i}: 1 vs 2 workers differ by ${diff} (scale ${scale})`);
    });
  });

  it('stops after the current step when asked, and the pool stays usable', async () => {
    const model = buildNet(true);
    let steps = 0;
    const result = await trainEpoch(model, smallSplit(), epochOptions(model, 2, { onBatch: () => steps++, shouldStop: () => steps >= 1 }));
    assert.equal(result.stopped, true);
    assert.equal(result.batches, 1);
    const again = await trainEpoch(model, smallSplit(), epochOptions(model, 2, { epoch: 1 }));
    assert.equal(again.batches, 3);
    const replicas = await (await sharedReplicaPool(1)).weights();
    weightsOf(model).forEach((w, i) => assert.equal(maxAbsDiff(w, replicas[0][i]), 0));
    model.dispose();
  });
});
