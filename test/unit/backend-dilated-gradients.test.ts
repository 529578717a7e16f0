/**
 * Gradients of dilated convolutions (tfjs 4.22 refuses them). Reference: the stock (non-dilated)
 * gradient of the same convolution written with an explicitly spread filter (zeros between the
 * taps, built here in plain JS), its filter gradient read back at the real taps by index. Checked
 * on cpu and wasm, for Conv2D (plain and fused, as tfjs-layers runs it), DepthwiseConv2dNative,
 * and a dilated Conv2D layer trained one step.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import { seededValues } from '../support/tensors';

function seededTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seededValues(tf.util.sizeFromShape(shape), seed), shape);
}

/** max |actual - expected| / max |expected|. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.strictEqual(actual.length, expected.length, 'tensor sizes differ');
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return Number.isFinite(maxDiff) ? maxDiff / Math.max(maxRef, 1e-12) : Infinity;
}

/** [kh, kw, a, b] values -> the spread filter's values, by index (independent of the engine's code). */
function spreadByIndex(values: Float32Array, [kh, kw, a, b]: number[], dh: number, dw: number): { values: Float32Array; shape: number[] } {
  const sh = (kh - 1) * dh + 1;
  const sw = (kw - 1) * dw + 1;
  const out = new Float32Array(sh * sw * a * b);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let k = 0; k < a * b; k++) out[((y * dh) * sw + x * dw) * a * b + k] = values[(y * kw + x) * a * b + k];
    }
  }
  return { values: out, shape: [sh, sw, a, b] };
}

function tapsByIndex(spreadValues: Float32Array, [kh, kw, a, b]: number[], dh: number, dw: number): Float32Array {
  const sw = (kw - 1) * dw + 1;
  const out = new Float32Array(kh * kw * a * b);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let k = 0; k < a * b; k++) out[(y * kw + x) * a * b + k] = spreadValues[((y * dh) * sw + x * dw) * a * b + k];
    }
  }
  return out;
}

type Conv = (x: tf.Tensor4D, w: tf.Tensor4D, dilations: [number, number]) => tf.Tensor4D;

/** dx and dW of sum(probe * conv(x, w)) with the dilated conv, and the spread-filter reference. */
function dilatedAndReference(conv: Conv, xShape: number[], wShape: number[], dilations: [number, number]) {
  return tf.tidy(() => {
    const x = seededTensor(xShape, 1) as tf.Tensor4D;
    const w = seededTensor(wShape, 2) as tf.Tensor4D;
    const probe = seededTensor(conv(x, w, dilations).shape, 3);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(probe, conv(a as tf.Tensor4D, b as tf.Tensor4D, dilations))))([x, w]);
    const spread = spreadByIndex(w.dataSync() as Float32Array, wShape, dilations[0], dilations[1]);
    const spreadW = tf.tensor4d(spread.values, spread.shape as [number, number, number, number]);
    const [refDx, refDSpread] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(probe, conv(a as tf.Tensor4D, b as tf.Tensor4D, [1, 1]))))([x, spreadW]);
    return {
      dx: Float32Array.from(dx.dataSync()),
      dw: Float32Array.from(dw.dataSync()),
      refDx: Float32Array.from(refDx.dataSync()),
      refDw: tapsByIndex(refDSpread.dataSync() as Float32Array, wShape, dilations[0], dilations[1]),
    };
  });
}

const plainConv: Conv = (x, w, d) => tf.conv2d(x, w, 1, 'same', 'NHWC', d);
const fusedLinearConv: Conv = (x, w, d) => tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', dilations: d, bias: tf.fill([w.shape[3]], 0.1) });
const validConv: Conv = (x, w, d) => tf.conv2d(x, w, 1, 'valid', 'NHWC', d);
const depthwise: Conv = (x, w, d) => tf.depthwiseConv2d(x, w, 1, 'same', 'NHWC', d);

const CASES: { label: string; conv: Conv; x: number[]; w: number[]; d: [number, number] }[] = [
  { label: 'conv2d same, rate 2', conv: plainConv, x: [2, 9, 8, 3], w: [3, 3, 3, 4], d: [2, 2] },
  { label: 'conv2d valid, rates 3x2', conv: validConv, x: [1, 10, 9, 2], w: [3, 2, 2, 3], d: [3, 2] },
  { label: 'fused conv2d (linear + bias), rate 2', conv: fusedLinearConv, x: [2, 8, 8, 3], w: [3, 3, 3, 5], d: [2, 2] },
  { label: 'depthwise same, rate 3, multiplier 2', conv: depthwise, x: [2, 9, 9, 3], w: [3, 3, 3, 2], d: [3, 3] },
];

describe('backends: gradients of dilated convolutions', function () {
  this.timeout(120_000);

  after(async () => {
    await initBackend('cpu');
  });

  for (const backend of ['cpu', 'wasm'] as const) {
    for (const c of CASES) {
      it(`${backend}: ${c.label} matches the spread-filter gradient (relative 1e-4)`, async () => {
        await initBackend(backend);
        const r = dilatedAndReference(c.conv, c.x, c.w, c.d);
        const errorX = relativeError(r.dx, r.refDx);
        const errorW = relativeError(r.dw, r.refDw);
        assert.ok(errorX <= 1e-4, `dx relative error ${errorX}`);
        assert.ok(errorW <= 1e-4, `dW relative error ${errorW}`);
      });
    }

    it(`${backend}: a dilated Conv2D layer (linear, with bias) trains one step`, async () => {
      await initBackend(backend);
      const model = tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' }),
          tf.layers.globalAveragePooling2d({}),
          tf.layers.dense({ units: 2 }),
        ],
      });
      model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
      const kernelBefore = model.layers[0].getWeights()[0].dataSync().slice();
      const xs = seededTensor([4, 8, 8, 2], 5);
      const ys = seededTensor([4, 2], 6);
      await model.fit(xs, ys, { epochs: 1, batchSize: 4, verbose: 0 });
      const kernelAfter = model.layers[0].getWeights()[0].dataSync();
      assert.ok(kernelAfter.some((v, i) => v !== kernelBefore[i]), 'the dilated kernel did not change');
      assert.ok(Array.from(kernelAfter).every(Number.isFinite));
      tf.dispose([xs, ys]);
      model.dispose();
    });
  }

  it('leaves non-dilated gradients to the stock code (same values as tf.grad without dilation on cpu)', async () => {
    await initBackend('cpu');
    const r = dilatedAndReference(plainConv, [1, 6, 6, 2], [3, 3, 2, 2], [1, 1]);
    assert.strictEqual(relativeError(r.dx, r.refDx), 0);
    assert.strictEqual(relativeError(r.dw, r.refDw), 0);
  });
});
