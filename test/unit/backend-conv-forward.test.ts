import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import { directForwardConvolutions, forceForwardConvRoute } from '../../src/engine/backends/conv2d-forward';
import type { Split } from '../../src/engine/data';
import { trainableVariables, trainEpoch } from '../../src/engine/train/trainer';
import { expectRelativeClose, seededTensor, seededValues } from '../support/tensors';

// The forward convolution's direct SIMD route (conv2d-forward.ts) against the cpu backend, and
// when it is taken: while a gradient is recorded, not in inference.

async function on(backend: 'wasm' | 'cpu', compute: () => tf.Tensor): Promise<Float32Array> {
  await initBackend(backend);
  const out = tf.tidy(compute);
  const values = Float32Array.from(out.dataSync() as Float32Array);
  out.dispose();
  return values;
}

interface Case {
  x: number[];
  w: number[];
  stride: number | [number, number];
  pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
  bias?: boolean;
}

const cases: Case[] = [
  { x: [2, 7, 7, 3], w: [3, 3, 3, 8], stride: 1, pad: 'same' },
  { x: [2, 7, 7, 3], w: [3, 3, 3, 8], stride: 1, pad: 'same', bias: true },
  { x: [3, 9, 8, 5], w: [3, 3, 5, 16], stride: 2, pad: 'same' },
  { x: [3, 9, 8, 5], w: [3, 3, 5, 16], stride: 2, pad: 'valid', bias: true },
  { x: [1, 10, 11, 16], w: [5, 5, 16, 24], stride: 1, pad: 'valid' },
  { x: [2, 12, 12, 16], w: [5, 5, 16, 8], stride: [2, 1], pad: 'same' },
  { x: [2, 6, 6, 24], w: [1, 1, 24, 32], stride: 1, pad: 'valid', bias: true },
  { x: [2, 6, 6, 24], w: [1, 1, 24, 16], stride: 2, pad: 'valid' },
  { x: [1, 224, 3, 3], w: [3, 3, 3, 32], stride: 2, pad: 'same' },
  // 2x2 images (pixel groups of 4 span images) and a 1x1 output per image, batch 4.
  { x: [3, 2, 2, 40], w: [3, 3, 40, 48], stride: 1, pad: 'same' },
  { x: [4, 3, 3, 8], w: [3, 3, 8, 8], stride: 1, pad: 'valid' },
  // An explicit padding, uneven.
  { x: [2, 6, 5, 4], w: [3, 2, 4, 8], stride: 1, pad: [[0, 0], [2, 0], [1, 1], [0, 0]] },
];

function convolution(c: Case): tf.Tensor {
  const x = seededTensor(c.x, 1) as tf.Tensor4D;
  const w = seededTensor(c.w, 2) as tf.Tensor4D;
  const bias = c.bias ? seededTensor([c.w[3]], 3) : undefined;
  return tf.fused.conv2d({ x, filter: w, strides: c.stride, pad: c.pad, bias });
}

describe('forward convolution on wasm: the direct SIMD route', function () {
  this.timeout(60000);
  afterEach(() => forceForwardConvRoute('auto'));

  for (const c of cases) {
    const label = `x ${c.x} w ${c.w} stride ${c.stride} pad ${JSON.stringify(c.pad)}${c.bias ? ' + bias' : ''}`;
    it(`equals cpu, forced direct: ${label}`, async () => {
      forceForwardConvRoute('direct');
      const before = directForwardConvolutions();
      const wasm = await on('wasm', () => convolution(c));
      assert.strictEqual(directForwardConvolutions(), before + 1, 'the direct route was not taken');
      const cpu = await on('cpu', () => convolution(c));
      expectRelativeClose(wasm, cpu, 1e-5, label);
    });
  }

  it('gives XNNPACK\'s forward result bit for bit on every case (same summation order: bias, then taps, then channels)', async () => {
    for (const c of cases) {
      forceForwardConvRoute('direct');
      const direct = await on('wasm', () => convolution(c));
      forceForwardConvRoute('xnnpack');
      const stock = await on('wasm', () => convolution(c));
      const differing = direct.filter((v, i) => !Object.is(v, stock[i])).length;
      assert.strictEqual(differing, 0, `x ${c.x} w ${c.w}: ${differing} values differ from XNNPACK's`);
    }
  });

  it('leaves shapes it does not serve to XNNPACK, with the right result: 12 output channels, an activation, a single output pixel', async () => {
    forceForwardConvRoute('direct');
    const served: Array<() => tf.Tensor> = [
      () => tf.conv2d(seededTensor([2, 5, 5, 3], 1) as tf.Tensor4D, seededTensor([3, 3, 3, 12], 2) as tf.Tensor4D, 1, 'same'),
      () => tf.fused.conv2d({ x: seededTensor([2, 5, 5, 3], 1) as tf.Tensor4D, filter: seededTensor([3, 3, 3, 8], 2) as tf.Tensor4D, strides: 1, pad: 'same', activation: 'relu' }),
      () => tf.conv2d(seededTensor([1, 3, 3, 8], 1) as tf.Tensor4D, seededTensor([3, 3, 8, 8], 2) as tf.Tensor4D, 1, 'valid'),
    ];
    for (const [i, compute] of served.entries()) {
      const before = directForwardConvolutions();
      const wasm = await on('wasm', compute);
      assert.strictEqual(directForwardConvolutions(), before, `case ${i} went the direct route`);
      const cpu = await on('cpu', compute);
      expectRelativeClose(wasm, cpu, 1e-5, `case ${i}`);
    }
  });

  it('auto: direct while a gradient is recorded, XNNPACK in inference; the gradients equal cpu\'s', async () => {
    const c = cases[3];
    const gradients = () => {
      const x = seededTensor(c.x, 1) as tf.Tensor4D;
      const w = seededTensor(c.w, 2) as tf.Tensor4D;
      const bias = seededTensor([c.w[3]], 3);
      const weights = seededTensor([c.x[0], 4, 3, c.w[3]], 4);
      const [dx, dw, db] = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
        tf.sum(tf.mul(tf.fused.conv2d({ x: xx as tf.Tensor4D, filter: ww as tf.Tensor4D, strides: c.stride, pad: c.pad, bias: bb }), weights)),
      )([x, w, bias]);
      return tf.concat([dx.flatten(), dw.flatten(), db.flatten()]);
    };
    let before = directForwardConvolutions();
    await on('wasm', () => convolution(c));
    assert.strictEqual(directForwardConvolutions(), before, 'inference went the direct route');
    before = directForwardConvolutions();
    const wasm = await on('wasm', gradients);
    assert.strictEqual(directForwardConvolutions(), before + 1, 'the recorded forward pass did not go the direct route');
    const cpu = await on('cpu', gradients);
    expectRelativeClose(wasm, cpu, 1e-4, 'dx, dW and db');
  });

  it('trains to the very same weights through either forward route (an epoch of a conv net with BatchNorm, a strided conv with bias)', async () => {
    await initBackend('wasm');
    const count = 48;
    const split: Split = { images: seededValues(count * 10 * 10 * 3, 5), labels: Int32Array.from({ length: count }, (_, i) => i % 3), count, imageShape: [10, 10, 3], numClasses: 3 };
    const runs: Float32Array[][] = [];
    for (const route of ['xnnpack', 'direct'] as const) {
      forceForwardConvRoute(route);
      const init = (seed: number) => tf.initializers.heNormal({ seed });
      const model = tf.sequential({
        layers: [
          // The first conv reads the data (trained through plain conv2d, bias added apart); the
          // second one goes through the fused conv with its bias, which the kernel adds.
          tf.layers.conv2d({ inputShape: [10, 10, 3], filters: 8, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: init(1) }),
          tf.layers.batchNormalization(),
          tf.layers.reLU(),
          tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', biasInitializer: tf.initializers.randomNormal({ seed: 4 }), kernelInitializer: init(2) }),
          tf.layers.reLU(),
          tf.layers.flatten(),
          tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
        ],
      });
      const before = directForwardConvolutions();
      await trainEpoch(model, split, { batchSize: 16, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3, seed: 7, epoch: 0, variables: trainableVariables(model), workers: 1 });
      assert.strictEqual(directForwardConvolutions() > before, route === 'direct', `route ${route}: direct calls ${directForwardConvolutions() - before}`);
      runs.push(model.weights.map((w) => Float32Array.from(w.read().dataSync() as Float32Array)));
      model.dispose();
    }
    runs[0].forEach((weights, i) => {
      const differing = weights.filter((v, k) => !Object.is(v, runs[1][i][k])).length;
      assert.strictEqual(differing, 0, `weight ${i}: ${differing} values differ between the routes`);
    });
  });
});
