/**
 * The DBC layer's straight-through estimator: the gradient reaching a latent weight must be the
 * gradient of the loss w.r.t. a plain per-channel multiplier evaluated at the binary mask
 * (PaS: w_used = w - stopgrad(w - (w > 0.5))), which finite differences confirm; and the wasm
 * backend must compute the same as the cpu reference.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
// Registers the wasm backend factory; the test fails (not skips) if it is missing.
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../src/engine/backends';
import { binaryMaskSte, DepthwiseBinaryConv } from '../../src/engine/layers/dbc';
import { maxAbs, maxAbsDiff, seededTensor } from '../support/tensors';

// Channels 1 and 3 are dropped (latent <= 0.5), channels 0 and 2 kept.
const LATENT = [0.9, 0.2, 0.7, 0.3];
const MASK = LATENT.map((v) => (v > 0.5 ? 1 : 0));
const X_SHAPE = [2, 6, 6, 4];
const KERNEL_SHAPE = [3, 3, 4, 3];

/** A smooth loss of the masked feature map through a 3x3 conv. */
function convLoss(masked: tf.Tensor, kernel: tf.Tensor): tf.Scalar {
  const y = tf.conv2d(masked as tf.Tensor4D, kernel as tf.Tensor4D, 1, 'same');
  return tf.mul(tf.sum(tf.square(tf.tanh(y))), 0.1) as tf.Scalar;
}

/** A smooth loss of the masked feature map with elementwise ops only. */
function elementwiseLoss(masked: tf.Tensor, weights: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(tf.square(tf.tanh(masked)), weights)) as tf.Scalar;
}

function arrayOf(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync());
}

describe('engine: DBC straight-through gradient', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('the layer forward multiplies each channel by its binary mask', () => {
    tf.tidy(() => {
      const x = seededTensor(X_SHAPE, 1);
      const layer = new DepthwiseBinaryConv({ initialValue: 1 });
      layer.apply(x); // builds the latent
      layer.setWeights([tf.tensor1d(LATENT)]);
      const out = layer.apply(x) as tf.Tensor;
      const expected = tf.mul(x, tf.tensor1d(MASK));
      assert.strictEqual(maxAbsDiff(arrayOf(out), arrayOf(expected)), 0);
      layer.dispose();
    });
  });

  it('grad w.r.t. the latent (binaryMaskSte and the layer) == grad w.r.t. a multiplier at the mask == finite differences', () => {
    const x = seededTensor(X_SHAPE, 2);
    const kernel = seededTensor(KERNEL_SHAPE, 3);
    const lossAt = (multiplier: number[]) => tf.tidy(() => convLoss(tf.mul(x, tf.tensor1d(multiplier)), kernel).dataSync()[0]);

    const steGrad = tf.tidy(() => arrayOf(tf.grad((w: tf.Tensor) => convLoss(tf.mul(x, binaryMaskSte(w)), kernel))(tf.tensor1d(LATENT))));
    const multiplierGrad = tf.tidy(() => arrayOf(tf.grad((s: tf.Tensor) => convLoss(tf.mul(x, s), kernel))(tf.tensor1d(MASK))));

    const layer = new DepthwiseBinaryConv({ initialValue: 1 });
    layer.apply(x);
    layer.setWeights([tf.tensor1d(LATENT)]);
    const latentName = layer.trainableWeights[0].name;
    const { value, grads } = tf.variableGrads(() => convLoss(layer.apply(x) as tf.Tensor, kernel));
    assert.ok(grads[latentName], `a gradient reaches the layer's latent (${Object.keys(grads).join(', ')})`);
    const layerGrad = arrayOf(grads[latentName]);
    value.dispose();
    tf.dispose(grads);
    layer.dispose();

    const scale = maxAbs(multiplierGrad);
    assert.ok(scale > 0.1, `the gradient is not negligible (${scale})`);
    assert.ok(maxAbsDiff(steGrad, multiplierGrad) <= 1e-6 * scale, `STE ${steGrad} vs multiplier ${multiplierGrad}`);
    assert.ok(maxAbsDiff(layerGrad, multiplierGrad) <= 1e-6 * scale, `layer ${layerGrad} vs multiplier ${multiplierGrad}`);
    // Dropped channels still get a gradient: their latent can climb back above 0.5.
    for (let c = 0; c < MASK.length; c++) {
      if (MASK[c] === 0) assert.ok(Math.abs(steGrad[c]) > 1e-3 * scale, `dropped channel ${c} receives gradient (${steGrad[c]})`);
    }

    const eps = 1e-2;
    const finite = MASK.map((_, c) => {
      const plus = MASK.slice();
      const minus = MASK.slice();
      plus[c] += eps;
      minus[c] -= eps;
      return (lossAt(plus) - lossAt(minus)) / (2 * eps);
    });
    const tolerance = 0.02 * scale;
    assert.ok(maxAbsDiff(steGrad, finite) <= tolerance, `STE ${steGrad} vs finite differences ${finite} (tolerance ${tolerance})`);
    // The tolerance is tight enough to reject a zero or sign-flipped gradient.
    assert.ok(maxAbsDiff(new Array(MASK.length).fill(0), finite) > tolerance, 'a zero gradient would fail');
    assert.ok(maxAbsDiff(Array.from(steGrad, (g) => -g), finite) > tolerance, 'a sign-flipped gradient would fail');
    x.dispose();
    kernel.dispose();
  });

  it('a masked channel does not update the next conv: its kernel gradient is exactly zero', () => {
    tf.tidy(() => {
      const x = seededTensor(X_SHAPE, 4);
      const kernelGrad = tf.grad((k: tf.Tensor) => convLoss(tf.mul(x, binaryMaskSte(tf.tensor1d(LATENT))), k))(seededTensor(KERNEL_SHAPE, 5));
      const values = arrayOf(kernelGrad);
      const [kh, kw, inC, outC] = KERNEL_SHAPE;
      for (let c = 0; c < inC; c++) {
        let sum = 0;
        for (let t = 0; t < kh * kw; t++) for (let o = 0; o < outC; o++) sum += Math.abs(values[(t * inC + c) * outC + o]);
        if (MASK[c] === 0) assert.strictEqual(sum, 0, `input channel ${c} is masked`);
        else assert.ok(sum > 0, `input channel ${c} is kept and trains`);
      }
    });
  });
});

describe('engine: DBC gradient on wasm == cpu', () => {
  before(() => {
    assert.ok(tf.findBackendFactory('wasm'), '@tensorflow/tfjs-backend-wasm registered its backend');
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  /** Runs `compute` on both backends (inputs rebuilt from seeds each time) and returns the arrays. */
  async function onBothBackends(compute: () => tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
    const run = async (backend: 'wasm' | 'cpu') => {
      await initBackend(backend);
      assert.strictEqual(tf.getBackend(), backend);
      return tf.tidy(() => compute().map(arrayOf));
    };
    return { wasm: await run('wasm'), cpu: await run('cpu') };
  }

  function assertSame(results: { wasm: Float32Array[]; cpu: Float32Array[] }, label: string): void {
    results.cpu.forEach((expected, i) => {
      const scale = maxAbs(expected);
      assert.ok(scale > 0, `${label}[${i}]: the cpu result is not all zero`);
      const diff = maxAbsDiff(results.wasm[i], expected);
      assert.ok(diff <= 1e-4 * scale, `${label}[${i}]: wasm vs cpu max abs diff ${diff} (scale ${scale})`);
    });
  }

  it('the DBC op alone (elementwise): value and latent gradient', async () => {
    const results = await onBothBackends(() => {
      const x = seededTensor(X_SHAPE, 6);
      const weights = seededTensor(X_SHAPE, 7);
      const f = (w: tf.Tensor) => elementwiseLoss(tf.mul(x, binaryMaskSte(w)), weights);
      const { value, grad } = tf.valueAndGrad(f)(tf.tensor1d(LATENT));
      return [value, grad];
    });
    assertSame(results, 'DBC op');
  });

  it('DBC followed by a conv: latent and kernel gradients', async () => {
    const results = await onBothBackends(() => {
      const x = seededTensor(X_SHAPE, 8);
      const [latentGrad, kernelGrad] = tf.grads((w: tf.Tensor, k: tf.Tensor) => convLoss(tf.mul(x, binaryMaskSte(w)), k))([
        tf.tensor1d(LATENT),
        seededTensor(KERNEL_SHAPE, 9),
      ]);
      return [latentGrad, kernelGrad];
    });
    assertSame(results, 'DBC + conv');
  });
});
