import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import type { Split } from '../../src/engine/data';
import { trainableVariables, trainEpoch, type EpochOptions } from '../../src/engine/train/trainer';
import { closeSharedReplicaPool, parseWorkers, resolveWorkers, shardSizes, sharedReplicaPool } from '../../src/engine/train/parallel';
import { FlatMomentum, flatLayout, readFlat, updateRanges } from '../../src/engine/train/parallel/shardStep';
import { enableFlatSgd } from '../../src/engine/train/flatSgd';
import { allocateFlatVectors, disableSimdMomentum, flatVectorViews, momentumStepFor } from '../../src/engine/train/flatVectors';
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

  for (const workers of [2, 3]) {
    it(`keeps every replica bitwise identical to the main model after several steps (BN moving stats included), ${workers} threads splitting the update`, async () => {
      const model = buildNet(true);
      const result = await trainEpoch(model, smallSplit(), epochOptions(model, workers));
      assert.equal(result.batches, 3);
      const main = weightsOf(model);
      const replicas = await (await sharedReplicaPool(workers - 1)).weights();
      assert.equal(replicas.length, workers - 1);
      for (const replica of replicas) main.forEach((w, i) => assert.equal(maxAbsDiff(w, replica[i]), 0, `weight ${model.weights[i].originalName} differs between replicas`));
      model.dispose();
    });
  }

  it('2 and 3 threads (the update split two and three ways) reach the same weights (no BN)', async () => {
    // Without BatchNorm the shard statistics do not matter, so 2 and 3 threads compute the same
    // update up to the order of float additions in the gradient sums.
    const results: Float32Array[][] = [];
    for (const workers of [2, 3]) {
      const model = buildNet(false);
      await trainEpoch(model, smallSplit(), epochOptions(model, workers));
      results.push(weightsOf(model));
      model.dispose();
    }
    results[0].forEach((w, i) => assert.ok(maxAbsDiff(w, results[1][i]) <= 1e-5 * maxAbs(w), `weight ${i}: 2 vs 3 threads differ by ${maxAbsDiff(w, results[1][i])}`));
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

  it('one thread on wasm: the flat update equals tf.train.momentum with taped weight decay (extra loss, BN)', async () => {
    const runs: Array<{ weights: Float32Array[]; loss: number }> = [];
    for (const flat of [true, false]) {
      enableFlatSgd(flat);
      try {
        const model = buildNet(true);
        const target = model.layers[0].weights[0].read() as tf.Variable;
        const extraLoss = () => tf.mul(tf.sum(tf.square(target)), 0.5) as tf.Scalar;
        const result = await trainEpoch(model, smallSplit(), epochOptions(model, 1, { extraLoss }));
        runs.push({ weights: weightsOf(model), loss: result.loss });
        model.dispose();
      } finally {
        enableFlatSgd(true);
      }
    }
    const initial = weightsOf(buildNet(true));
    runs[1].weights.forEach((expected, i) => {
      const scale = maxAbs(expected);
      const diff = maxAbsDiff(runs[0].weights[i], expected);
      // Only the order in which the decay and loss gradients are summed may differ.
      assert.ok(diff <= 1e-6 * scale, `weight ${i}: flat vs tensor update differ by ${diff} (scale ${scale})`);
    });
    assert.ok(runs[1].weights.some((w, i) => maxAbsDiff(w, initial[i]) > 1e-3), 'the epoch did not move the weights');
    // The reported loss includes the weight-decay term either way.
    assert.ok(Math.abs(runs[0].loss - runs[1].loss) <= 1e-5 * Math.abs(runs[1].loss), `loss ${runs[0].loss} vs ${runs[1].loss}`);
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

  it('keeps the replicas\' models across epochs: no rebuild, tensor count and wasm heap stable over epochs', async () => {
    const model = buildNet(true);
    const pool = await sharedReplicaPool(1);
    await trainEpoch(model, smallSplit(), epochOptions(model, 2, { epoch: 0 }));
    await trainEpoch(model, smallSplit(), epochOptions(model, 2, { epoch: 1 }));
    const before = await pool.memory();
    for (let epoch = 2; epoch < 8; epoch++) {
      await trainEpoch(model, smallSplit(), epochOptions(model, 2, { epoch }));
      assert.equal(pool.lastRebuilt, 0, `epoch ${epoch}: a replica rebuilt its model`);
    }
    const after = await pool.memory();
    assert.equal(after[0].numTensors, before[0].numTensors, 'the replica holds more tensors after 6 more epochs');
    assert.equal(after[0].heapBytes, before[0].heapBytes, 'the replica\'s wasm heap grew over 6 epochs');
    const replicas = await pool.weights();
    weightsOf(model).forEach((w, i) => assert.equal(maxAbsDiff(w, replicas[0][i]), 0));
    model.dispose();
  });

  it('keeps a change made to the main model between steps (e.g. clipped latents) and the replicas follow it', async () => {
    const model = buildNet(true);
    const kernel = model.layers[0].weights[0].read() as tf.Variable;
    // Zeroing output channel 0 after every step: the next update starts from those zeros on every replica.
    const channels = kernel.shape[3]!;
    const keep = tf.tensor(Float32Array.from({ length: kernel.size }, (_, k) => (k % channels === 0 ? 0 : 1)), kernel.shape);
    const clip = () => kernel.assign(tf.tidy(() => tf.mul(kernel, keep)));
    await trainEpoch(model, smallSplit(), epochOptions(model, 2, { onBatch: clip }));
    const main = weightsOf(model);
    const replica = (await (await sharedReplicaPool(1)).weights())[0];
    const kernelIndex = model.weights.findIndex((w) => w.read() === kernel);
    main.forEach((w, i) => {
      if (i !== kernelIndex) assert.equal(maxAbsDiff(w, replica[i]), 0, `weight ${model.weights[i].originalName} differs`);
    });
    // Only the last clip (after the last update) is not on the replica yet: channel 0 alone may differ.
    main[kernelIndex].forEach((v, k) => {
      if (k % channels === 0) assert.equal(v, 0);
      else assert.equal(v, replica[kernelIndex][k], `kernel value ${k} (not clipped) differs`);
    });
    assert.ok(replica[kernelIndex].some((v, k) => k % channels === 0 && v !== 0), 'the replica should still hold the last unclipped update of channel 0');
    keep.dispose();
    model.dispose();
  });

  it('keeps flat vectors in a plain SharedArrayBuffer, updated by the JS loop, where the SIMD memory is off; the same update bit for bit', () => {
    const length = 1003;
    const run = (simdOff: boolean) => {
      disableSimdMomentum(simdOff);
      try {
        const store = allocateFlatVectors([length, length, length, length]);
        assert.equal(store.memory === undefined, simdOff, simdOff ? 'a wasm memory was made with SIMD off' : 'no wasm memory was made');
        const [g0, g1, weights, accumulation] = flatVectorViews(store);
        assert.equal(momentumStepFor(weights.buffer) === undefined, simdOff);
        g0.set(seededValues(length, 1));
        g1.set(seededValues(length, 2));
        weights.set(seededValues(length, 3));
        const optimizer = new FlatMomentum(accumulation, 0.05, 0.9);
        let squares = 0;
        for (let step = 0; step < 3; step++) squares = optimizer.apply(weights, [g0, g1], 0, length, { rate: 0.01, ranges: [[10, 700]] });
        return { weights: Float32Array.from(weights), squares };
      } finally {
        disableSimdMomentum(false);
      }
    };
    const js = run(true);
    const simd = run(false);
    assert.equal(maxAbsDiff(js.weights, simd.weights), 0);
    assert.ok(Math.abs(js.squares - simd.squares) <= 1e-12 * js.squares);
  });

  for (const [threads, where] of [1, 2, 3].flatMap((t) => [[t, 'JS arrays'], [t, 'wasm memory (SIMD step)']] as Array<[number, string]>)) {
    it(`applies SGD momentum with weight decay bitwise like tf.train.momentum, gradients of ${threads} thread(s) summed in order, in ${where}`, () => {
      const simd = where !== 'JS arrays';
      const shapes = [[3, 3, 2, 4], [4], [7, 5]];
      // Weight decay on the first and last variables (as on kernels, not on biases).
      const rate = 0.01;
      const half = Math.fround(rate / 2);
      const variables = shapes.map((shape, i) => tf.variable(tf.tensor(seededValues(shape.reduce((a, b) => a * b, 1), 20 + i), shape)));
      const reference = variables.map((v) => tf.variable(v.clone()));
      const layout = flatLayout(shapes);
      // With `simd`, every vector in one FlatVectors memory (the gradients in equally spaced slots, as in the exchange).
      const vectors = simd ? flatVectorViews(allocateFlatVectors([...Array<number>(threads).fill(layout.total), ...Array<number>(4).fill(layout.total)])) : undefined;
      const vector = (i: number) => vectors?.[threads + i] ?? new Float32Array(layout.total);
      const flat = new FlatMomentum(vector(0), 0.05, 0.9);
      // The same update cut into three ranges (as threads split it): bit for bit the same.
      const cut = new FlatMomentum(vector(1), 0.05, 0.9);
      const cutWeights = vector(2);
      const optimizer = tf.train.momentum(0.05, 0.9);
      const weights = vector(3);
      if (simd) assert.ok(momentumStepFor(weights.buffer), 'no SIMD step is bound to the FlatVectors memory');
      const inPlace = (values: Float32Array[]) => (vectors ? values.map((v, p) => (vectors[p].set(v), vectors[p])) : values);
      const decay = { rate, ranges: [0, 2].map((i): [number, number] => [layout.offsets[i], layout.offsets[i] + layout.sizes[i]]) };
      const decayed = (k: number) => decay.ranges.some(([start, end]) => k >= start && k < end);
      for (let step = 0; step < 4; step++) {
        const parts = inPlace(Array.from({ length: threads }, (_, p) => seededValues(layout.total, 100 + step * 3 + p)));
        readFlat(variables, weights, layout);
        // The reference gradient: the first thread's plus tfjs's decay gradient (rate / 2) * (2 * w), then the others.
        const summed = Float32Array.from(parts[0], (g, k) => (decayed(k) ? g + Math.fround(half * (2 * weights[k])) : g));
        for (const part of parts.slice(1)) for (let k = 0; k < summed.length; k++) summed[k] += part[k];
        let expectedSquares = 0;
        weights.forEach((w, k) => (expectedSquares += decayed(k) ? w * w : 0));
        tf.tidy(() => optimizer.applyGradients(reference.map((v, i) => ({ name: v.name, tensor: tf.tensor(summed.subarray(layout.offsets[i], layout.offsets[i] + layout.sizes[i]), v.shape) }))));
        cutWeights.set(weights);
        const squares = flat.apply(weights, parts, 0, layout.total, decay);
        assert.ok(Math.abs(squares - expectedSquares) <= 1e-12 * expectedSquares, `sum of squares ${squares} vs ${expectedSquares}`);
        let cutSquares = 0;
        for (const [from, to] of updateRanges(layout.total, 3)) cutSquares += cut.apply(cutWeights, parts, from, to, decay);
        assert.equal(maxAbsDiff(cutWeights, weights), 0, 'the update cut into ranges differs');
        assert.ok(Math.abs(cutSquares - expectedSquares) <= 1e-12 * expectedSquares, 'the ranges\' sums of squares differ');
        variables.forEach((v, i) => v.assign(tf.tensor(weights.subarray(layout.offsets[i], layout.offsets[i] + layout.sizes[i]), v.shape)));
      }
      variables.forEach((v, i) => assert.equal(maxAbsDiff(v.dataSync() as Float32Array, reference[i].dataSync() as Float32Array), 0, `variable ${i} differs from tf.train.momentum`));
      tf.dispose([...variables, ...reference]);
      optimizer.dispose();
    });
  }
});
