import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';
import { batchNormInTraining } from '../../src/engine/backends/batchnorm-training';
import { filterGradientRoute, forceConvGradientRoutes, inputGradientRoute } from '../../src/engine/backends/conv2d-gradients';
import { disableSimdKernels, simdKernels } from '../../src/engine/backends/simd/simdKernels';
import { seededValues } from '../support/tensors';

// Helpers: run the same computation on wasm and on the reference cpu backend and compare.


function seededTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seededValues(tf.util.sizeFromShape(shape), seed), shape);
}

/** max |actual - expected| / max |expected|: one number per tensor, robust to values near 0. */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.strictEqual(actual.length, expected.length, 'tensor sizes differ');
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  if (!Number.isFinite(maxDiff)) return Infinity;
  return maxDiff / Math.max(maxRef, 1e-12);
}

/**
 * Runs `compute` on wasm and on cpu (fresh inputs each time, built by `compute` itself from seeds)
 * and returns both results as plain arrays, freeing every tensor it made.
 */
async function onWasmAndCpu(compute: () => tf.Tensor[]): Promise<{ wasm: Float32Array[]; cpu: Float32Array[] }> {
  const run = async (backend: 'wasm' | 'cpu') => {
    await initBackend(backend);
    assert.strictEqual(tf.getBackend(), backend);
    const outputs = tf.tidy(compute);
    const arrays = outputs.map((t) => t.dataSync() as Float32Array).map((a) => Float32Array.from(a));
    tf.dispose(outputs);
    return arrays;
  };
  const wasm = await run('wasm');
  const cpu = await run('cpu');
  return { wasm, cpu };
}

/** Asserts that each wasm result matches cpu within `tolerance` relative error. */
function assertAllClose(results: { wasm: Float32Array[]; cpu: Float32Array[] }, label: string, tolerance = 1e-4): void {
  assert.strictEqual(results.wasm.length, results.cpu.length);
  results.cpu.forEach((expected, i) => {
    const error = relativeError(results.wasm[i], expected);
    assert.ok(error <= tolerance, `${label}, output ${i}: relative error ${error.toExponential(2)} > ${tolerance}`);
  });
}

type Pad = 'same' | 'valid';

/** Gradients of sum(weights * f(x, w)) wrt x and w: a non-uniform dy reaches the kernels. */
function gradientsOf(f: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor, xShape: number[], wShape: number[]): tf.Tensor[] {
  const x = seededTensor(xShape, 1) as tf.Tensor4D;
  const w = seededTensor(wShape, 2) as tf.Tensor4D;
  const probe = f(x, w);
  const weights = seededTensor(probe.shape, 3);
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(weights, f(a as tf.Tensor4D, b as tf.Tensor4D))))([x, w]);
  return [probe, dx, dw];
}

describe('wasm training kernels match the cpu backend', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('registers the gradient kernels that stock wasm lacks', async () => {
    await initBackend('wasm');
    for (const name of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput']) {
      assert.ok(tf.getKernel(name, 'wasm'), `${name} is not registered for wasm`);
    }
  });

  const convCases: Array<{ x: number[]; w: number[]; stride: number; pad: Pad }> = [
    { x: [2, 9, 11, 3], w: [3, 3, 3, 5], stride: 1, pad: 'same' },
    { x: [2, 9, 11, 3], w: [3, 3, 3, 5], stride: 2, pad: 'same' },
    { x: [2, 9, 11, 3], w: [3, 3, 3, 5], stride: 1, pad: 'valid' },
    { x: [2, 9, 11, 3], w: [3, 3, 3, 5], stride: 2, pad: 'valid' },
    // Rows long enough for the wasm patch gather's 4-wide copies at stride 1 and 2 (and their tails).
    { x: [2, 5, 23, 9], w: [3, 3, 9, 4], stride: 2, pad: 'same' },
    { x: [2, 5, 23, 9], w: [3, 3, 9, 4], stride: 1, pad: 'valid' },
    { x: [3, 10, 8, 4], w: [3, 3, 4, 6], stride: 2, pad: 'same' },
    { x: [2, 7, 7, 6], w: [1, 1, 6, 4], stride: 1, pad: 'valid' },
    { x: [2, 7, 9, 6], w: [1, 1, 6, 4], stride: 2, pad: 'same' },
    { x: [1, 12, 13, 2], w: [5, 5, 2, 3], stride: 2, pad: 'same' },
    { x: [2, 8, 8, 1], w: [3, 3, 1, 7], stride: 1, pad: 'same' },
    { x: [2, 10, 11, 3], w: [2, 2, 3, 4], stride: 2, pad: 'same' },
    // 8+ input channels and a 3x3 filter take the conv-based filter gradient, the rest the matmul.
    { x: [2, 9, 11, 9], w: [3, 3, 9, 5], stride: 1, pad: 'same' },
    { x: [2, 9, 11, 9], w: [3, 3, 9, 5], stride: 2, pad: 'valid' },
    { x: [2, 10, 10, 12], w: [3, 3, 12, 8], stride: 2, pad: 'same' },
    { x: [1, 11, 13, 2], w: [3, 3, 2, 3], stride: 3, pad: 'valid' },
    { x: [1, 11, 13, 2], w: [3, 3, 2, 3], stride: 3, pad: 'same' },
    // Few output pixels, many channels: the matmul input gradient by default.
    { x: [2, 4, 4, 16], w: [3, 3, 16, 40], stride: 2, pad: 'same' },
    { x: [2, 3, 3, 12], w: [3, 3, 12, 20], stride: 1, pad: 'valid' },
    // A widening layer over many pixels: the matmul filter gradient by default.
    { x: [2, 16, 16, 8], w: [3, 3, 8, 24], stride: 1, pad: 'same' },
    // The direct filter gradient (the cases above test its channel padding): one image per pass
    // (400 output pixels each), passes of 3 + 2 images, a strided 1x1 layer, a non-square valid
    // output, and one output pixel per image (not served: a forced direct route yields to the
    // chosen one).
    { x: [5, 20, 20, 8], w: [3, 3, 8, 16], stride: 1, pad: 'same' },
    { x: [5, 12, 12, 4], w: [3, 3, 4, 8], stride: 1, pad: 'valid' },
    { x: [3, 9, 9, 8], w: [1, 1, 8, 16], stride: 2, pad: 'same' },
    { x: [2, 6, 7, 12], w: [3, 3, 12, 8], stride: 2, pad: 'valid' },
    { x: [4, 2, 2, 8], w: [3, 3, 8, 8], stride: 2, pad: 'same' },
    // Images larger than a pass (512 KB of x and dy) go in bands of output rows: 37 + 11 rows, and
    // at stride 2, 22 + 3 rows of each of two images.
    { x: [1, 48, 48, 64], w: [3, 3, 64, 8], stride: 1, pad: 'same' },
    { x: [2, 50, 50, 56], w: [3, 3, 56, 8], stride: 2, pad: 'same' },
    // The direct input gradient (stride 1; the cases above test its channel padding and groups of
    // 4 pixels across rows and images): filters that are not square, with 'same' and 'valid'
    // padding, 2x2 images, and a batch of 3 pixels (not served: a forced direct route yields).
    { x: [2, 6, 9, 8], w: [1, 3, 8, 16], stride: 1, pad: 'same' },
    { x: [2, 7, 6, 5], w: [2, 2, 5, 8], stride: 1, pad: 'valid' },
    { x: [1, 5, 8, 4], w: [2, 2, 4, 8], stride: 1, pad: 'same' },
    { x: [3, 2, 2, 16], w: [3, 3, 16, 8], stride: 1, pad: 'same' },
    { x: [1, 1, 3, 8], w: [1, 3, 8, 8], stride: 1, pad: 'same' },
  ];
  for (const c of convCases) {
    // Each shape every way: the route chosen for it, and both gradients forced through each route.
    it(`conv2d ${c.w[0]}x${c.w[1]} stride ${c.stride} ${c.pad} on ${c.x.join('x')} -> ${c.w[3]} channels (chosen, matmul, conv and direct routes; matmul without SIMD)`, async () => {
      // The matmul route once more without the SIMD kernels: its patch gather then runs in JS.
      const variants = [{}, { input: 'matmul', filter: 'matmul' }, { input: 'conv', filter: 'conv' }, { input: 'direct', filter: 'direct' }, { input: 'matmul', filter: 'matmul', noSimd: true }] as const;
      for (const { noSimd, ...forced } of variants as ReadonlyArray<{ input?: 'matmul' | 'conv' | 'direct'; filter?: 'matmul' | 'conv' | 'direct'; noSimd?: boolean }>) {
        forceConvGradientRoutes(forced);
        disableSimdKernels(noSimd === true);
        try {
          const results = await onWasmAndCpu(() => gradientsOf((x, w) => tf.conv2d(x, w, c.stride, c.pad), c.x, c.w));
          assertAllClose(results, `conv2d, routes ${JSON.stringify(forced)}${noSimd ? ' without SIMD kernels' : ''}`);
        } finally {
          forceConvGradientRoutes({});
          disableSimdKernels(false);
        }
      }
    });
  }

  it('filter gradient of a layer whose patches exceed 16 MB is gathered a chunk of images at a time (2 + 1 images here)', async () => {
    // 9 x 96 x 48 x 48 = 1.99M patch values per image: two images fit in 4M, three do not.
    for (const noSimd of [false, true]) {
      forceConvGradientRoutes({ filter: 'matmul' });
      disableSimdKernels(noSimd);
      try {
        const results = await onWasmAndCpu(() => gradientsOf((x, w) => tf.conv2d(x, w, 1, 'same'), [3, 48, 48, 96], [3, 3, 96, 1]));
        assertAllClose(results, `chunked filter gradient${noSimd ? ' without SIMD kernels' : ''}`);
      } finally {
        forceConvGradientRoutes({});
        disableSimdKernels(false);
      }
    }
  });

  it('routes: the direct filter gradient where images have 4+ output pixels, the direct input gradient at stride 1; the matmul gradients never build a patch or column matrix above 16 MB; the matmul input gradient for strided layers (wasm scatter) or few pixels', () => {
    const info = (x: number[], w: number[], stride: number) =>
      tf.backend_util.computeConv2DInfo(x as [number, number, number, number], w as [number, number, number, number], stride, 1, 'same', undefined, false, 'channelsLast');
    // With the SIMD kernels, layers with at least 4 output pixels per image take the direct kernel,
    // which builds no patch matrix, even on a 224x224 model's early activation, and whatever the
    // widths (3 input channels and 20 outputs are padded to its 4 x 8 blocks)...
    assert.equal(filterGradientRoute(info([32, 28, 28, 16], [3, 3, 16, 32], 2), true), 'direct');
    assert.equal(filterGradientRoute(info([4, 112, 112, 64], [3, 3, 64, 128], 1), true), 'direct');
    assert.equal(filterGradientRoute(info([4, 112, 112, 64], [1, 1, 64, 128], 1), true), 'direct');
    assert.equal(filterGradientRoute(info([32, 28, 28, 3], [3, 3, 3, 32], 2), true), 'direct');
    assert.equal(filterGradientRoute(info([32, 14, 14, 32], [3, 3, 32, 20], 1), true), 'direct');
    // ...but not with one output pixel per image.
    assert.equal(filterGradientRoute(info([32, 2, 2, 192], [3, 3, 192, 640], 2), true), 'matmul');
    // Without them: a widening 3x3 layer over many pixels takes the product, while its patches stay
    // small, but not on that 224x224 activation (4 x 112 x 112 x 64 -> 9 x 64 x 50,176 patch values).
    assert.equal(filterGradientRoute(info([32, 28, 28, 16], [3, 3, 16, 32], 2), false), 'matmul');
    assert.equal(filterGradientRoute(info([4, 112, 112, 64], [3, 3, 64, 128], 1), false), 'conv');
    assert.equal(filterGradientRoute(info([4, 112, 112, 64], [1, 1, 64, 128], 1), false), 'matmul');
    // A layer as wide as its input over many pixels: the product only where the gather runs in
    // wasm; one narrowing over few pixels (one per image): the convolution there.
    assert.equal(filterGradientRoute(info([32, 14, 14, 32], [3, 3, 32, 32], 1), false), 'conv');
    assert.equal(filterGradientRoute(info([32, 2, 2, 64], [3, 3, 64, 32], 2), true), 'conv');
    // With the SIMD kernels, stride-1 layers take the direct kernel, down to 2x2 images; not a
    // batch of fewer than 4 input pixels (its block).
    assert.equal(inputGradientRoute(info([32, 16, 16, 24], [3, 3, 24, 24], 1), true), 'direct');
    assert.equal(inputGradientRoute(info([4, 56, 56, 24], [1, 1, 24, 144], 1), true), 'direct');
    assert.equal(inputGradientRoute(info([32, 2, 2, 192], [3, 3, 192, 192], 1), true), 'direct');
    assert.equal(inputGradientRoute(info([1, 1, 3, 64], [3, 3, 64, 64], 1), true), 'matmul');
    assert.equal(inputGradientRoute(info([32, 16, 16, 24], [3, 3, 24, 24], 1), false), 'conv');
    for (const columnsInWasm of [true, false]) {
      assert.equal(inputGradientRoute(info([32, 2, 2, 96], [3, 3, 96, 640], 2), columnsInWasm), 'matmul');
      assert.equal(inputGradientRoute(info([32, 2, 2, 96], [1, 1, 96, 640], 2), columnsInWasm), 'conv');
      // The columns would be 9 x 64 x 12,544 values: above 16 MB.
      assert.equal(inputGradientRoute(info([4, 112, 112, 64], [3, 3, 64, 64], 2), columnsInWasm), 'conv');
    }
    // A strided layer over many pixels: the product only where the scatter runs in wasm.
    assert.equal(inputGradientRoute(info([32, 28, 28, 16], [3, 3, 16, 32], 2), true), 'matmul');
    assert.equal(inputGradientRoute(info([32, 28, 28, 16], [3, 3, 16, 32], 2), false), 'conv');
  });

  it('fused conv2d with bias and relu (what tfjs-layers runs) gets all three gradients', async () => {
    const results = await onWasmAndCpu(() => {
      const x = seededTensor([2, 9, 9, 3], 4) as tf.Tensor4D;
      const w = seededTensor([3, 3, 3, 4], 5) as tf.Tensor4D;
      const bias = seededTensor([4], 6) as tf.Tensor1D;
      const weights = seededTensor([2, 5, 5, 4], 7);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(weights, tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, strides: 2, pad: 'same', bias: c, activation: 'relu' })));
      return tf.grads(f)([x, w, bias]);
    });
    assertAllClose(results, 'fused conv2d');
  });

  it('clipByValue (ReLU6): the one-pass wasm gradient passes dy exactly where cpu does, both bounds included', async () => {
    // Values on, just inside and just outside the bounds, for ReLU6's bounds (0, 6) and for bounds
    // that float32 rounds inward (0.7 down, 1.1 up: x = fround(bound) is on the bound in float32).
    const probes = [-1, 0, 1e-8, 0.7, Math.fround(0.7), 0.70001, 1.1, Math.fround(1.1), 1.2, 3, 6, 6.000001, 7, -0];
    // 78 values: the SIMD kernel's four-at-a-time loop and its one-at-a-time tail; then the JS loop.
    for (const simd of [true, false]) {
      disableSimdKernels(!simd);
      try {
        for (const [min, max] of [[0, 6], [0.7, 1.1]]) {
          const results = await onWasmAndCpu(() => {
            const x = tf.concat([tf.tensor1d(probes), tf.mul(seededTensor([64], 8), 8)]);
            const weights = seededTensor(x.shape, 9);
            return [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(weights, tf.clipByValue(a, min, max))))(x)];
          });
          results.cpu[0].forEach((expected, i) => assert.strictEqual(results.wasm[0][i], expected, `[${min}, ${max}], simd ${simd}, element ${i}`));
        }
      } finally {
        disableSimdKernels(false);
      }
    }
    await initBackend('wasm');
    const x = tf.tensor1d(probes);
    const { kernelNames } = await tf.profile(() => tf.grad((a: tf.Tensor) => tf.sum(tf.clipByValue(a, 0, 6)))(x));
    x.dispose();
    assert.ok(kernelNames.includes('PasClipByValueGrad') && !kernelNames.includes('LogicalAnd'), `kernels run: ${kernelNames.join(', ')}`);
  });

  const depthwiseCases: Array<{ x: number[]; w: number[]; stride: number; pad: Pad }> = [
    { x: [2, 9, 7, 4], w: [3, 3, 4, 1], stride: 1, pad: 'same' },
    { x: [2, 9, 7, 4], w: [3, 3, 4, 1], stride: 2, pad: 'same' },
    { x: [2, 9, 7, 4], w: [3, 3, 4, 1], stride: 2, pad: 'valid' },
    { x: [2, 8, 9, 3], w: [3, 3, 3, 2], stride: 1, pad: 'valid' },
    { x: [1, 11, 10, 3], w: [5, 5, 3, 2], stride: 2, pad: 'same' },
    // Multiplier 1: dx through XNNPACK (dy spread out at stride 2), dW through our SIMD kernel:
    // uneven 'same' padding of a 5x5 filter at stride 2, 'valid' leaving rows unread, and channel
    // counts that take each of the kernel's paths (16 at a time, 4 at a time, one at a time).
    { x: [2, 10, 8, 5], w: [5, 5, 5, 1], stride: 2, pad: 'same' },
    { x: [3, 8, 9, 6], w: [3, 3, 6, 1], stride: 1, pad: 'valid' },
    { x: [2, 10, 11, 3], w: [3, 3, 3, 1], stride: 2, pad: 'valid' },
    { x: [2, 9, 8, 21], w: [3, 3, 21, 1], stride: 2, pad: 'same' },
    { x: [3, 7, 7, 32], w: [3, 3, 32, 1], stride: 1, pad: 'same' },
  ];
  for (const c of depthwiseCases) {
    it(`depthwise ${c.w[0]}x${c.w[1]} x${c.w[3]} stride ${c.stride} ${c.pad} on ${c.x.join('x')}`, async () => {
      const results = await onWasmAndCpu(() =>
        gradientsOf((x, w) => tf.depthwiseConv2d(x, w, c.stride, c.pad), c.x, c.w),
      );
      assertAllClose(results, 'depthwise');
    });
  }
  it("our SIMD kernels load on the wasm backend's heap (else the tests above would only cover the JS loops)", async () => {
    await initBackend('wasm');
    const kernels = simdKernels(tf.backend());
    assert.ok(kernels, 'simd kernels unavailable');
    assert.strictEqual(typeof kernels.depthwiseTapGradient, 'function');
    assert.strictEqual(typeof kernels.depthwiseInputGradient, 'function');
  });
  it('depthwise multiplier 1 without the SIMD kernels (the JS loops they replace) also matches cpu', async () => {
    disableSimdKernels(true);
    try {
      for (const c of depthwiseCases.filter((d) => d.w[3] === 1)) {
        const results = await onWasmAndCpu(() => gradientsOf((x, w) => tf.depthwiseConv2d(x, w, c.stride, c.pad), c.x, c.w));
        assertAllClose(results, `depthwise ${c.x.join('x')} without SIMD`);
      }
    } finally {
      disableSimdKernels(false);
    }
  });

  const poolCases: Array<{ x: number[]; size: number; stride: number; pad: Pad }> = [
    { x: [1, 4, 6, 1], size: 2, stride: 2, pad: 'valid' },
    { x: [2, 8, 8, 3], size: 2, stride: 2, pad: 'same' },
    { x: [2, 15, 13, 3], size: 2, stride: 2, pad: 'same' },
    { x: [2, 9, 11, 4], size: 3, stride: 2, pad: 'same' },
    { x: [2, 9, 7, 2], size: 3, stride: 1, pad: 'valid' },
  ];
  for (const c of poolCases) {
    it(`max and average pool ${c.size}x${c.size} stride ${c.stride} ${c.pad} on ${c.x.join('x')}`, async () => {
      const results = await onWasmAndCpu(() => {
        const x = seededTensor(c.x, 23);
        const maxOut = tf.maxPool(x as tf.Tensor4D, c.size, c.stride, c.pad);
        const weights = seededTensor(maxOut.shape, 24);
        const maxGrad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(weights, tf.maxPool(a as tf.Tensor4D, c.size, c.stride, c.pad))))(x);
        const avgGrad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(weights, tf.avgPool(a as tf.Tensor4D, c.size, c.stride, c.pad))))(x);
        return [maxOut, maxGrad, avgGrad];
      });
      assertAllClose(results, 'pooling');
    });
  }

  const tileCases: Array<{ shape: number[]; reps: number[] }> = [
    { shape: [1, 1, 1, 5], reps: [3, 4, 7, 1] },
    { shape: [2, 3], reps: [3, 2] },
    { shape: [3, 1, 2], reps: [1, 5, 3] },
    { shape: [4], reps: [3] },
    { shape: [2, 1], reps: [2, 6] },
  ];
  for (const c of tileCases) {
    it(`tile ${c.shape.join('x')} by ${c.reps.join('x')}`, async () => {
      const results = await onWasmAndCpu(() => [tf.tile(seededTensor(c.shape, 8), c.reps)]);
      assertAllClose(results, 'tile', 0);
    });
  }

  it('tile of int32 tensors keeps values and dtype', async () => {
    await initBackend('wasm');
    const tiled = tf.tile(tf.tensor2d([[1, 2], [3, 4]], [2, 2], 'int32'), [2, 3]);
    assert.strictEqual(tiled.dtype, 'int32');
    assert.deepStrictEqual(Array.from(tiled.dataSync()), [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4]);
    tiled.dispose();
  });

  for (const axes of [[0, 1, 2], [0], [0, 1], [1, 2], [3]]) {
    for (const keepDims of [false, true]) {
      it(`sum and mean over axes [${axes}] keepDims=${keepDims}`, async () => {
        const results = await onWasmAndCpu(() => {
          const x = seededTensor([5, 7, 3, 6], 9);
          const sum = tf.sum(x, axes, keepDims);
          const mean = tf.mean(x, axes, keepDims);
          return [tf.reshape(sum, [-1]), tf.reshape(mean, [-1]), tf.tensor1d(sum.shape), tf.tensor1d(mean.shape)];
        });
        assertAllClose(results, 'reduction');
      });
    }
  }

  const sliceCases: Array<{ shape: number[]; begin: number[]; size: number[] }> = [
    { shape: [4, 9, 7, 5], begin: [0, 1, 1, 0], size: [4, 7, 5, 5] },
    { shape: [4, 9, 7, 5], begin: [1, 0, 0, 0], size: [2, 9, 7, 5] },
    { shape: [4, 9, 7, 5], begin: [0, 0, 0, 2], size: [-1, -1, -1, 3] },
    { shape: [6, 5], begin: [2, 1], size: [3, 4] },
    { shape: [11], begin: [3], size: [5] },
  ];
  for (const c of sliceCases) {
    it(`slice ${c.shape.join('x')} from [${c.begin}] size [${c.size}], and its gradient`, async () => {
      const results = await onWasmAndCpu(() => {
        const x = seededTensor(c.shape, 25);
        const sliced = tf.slice(x, c.begin, c.size);
        const weights = seededTensor(sliced.shape, 26);
        return [sliced, tf.grad((a: tf.Tensor) => tf.sum(tf.mul(weights, tf.slice(a, c.begin, c.size))))(x)];
      });
      assertAllClose(results, 'slice', 0);
    });
  }

  it('identity and same-dtype cast share memory safely (results survive disposing the source)', async () => {
    await initBackend('wasm');
    const x = seededTensor([3, 4], 27);
    const expected = Array.from(x.dataSync());
    const copies = [tf.clone(x), tf.cast(x, 'float32'), tf.clone(tf.reshape(x, [4, 3]))];
    const asInt = tf.cast(tf.mul(x, 10), 'int32');
    x.dispose();
    for (const copy of copies) assert.deepStrictEqual(Array.from(copy.dataSync()), expected);
    assert.strictEqual(asInt.dtype, 'int32');
    // int32 has no -0: a small negative value truncates to 0.
    assert.deepStrictEqual(Array.from(asInt.dataSync()), expected.map((v) => Math.trunc(Math.fround(v * 10)) || 0));
    tf.dispose([...copies, asInt]);
  });

  for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]]) {
    it(`batch matmul transposeA=${transposeA} transposeB=${transposeB}, plain and batched`, async () => {
      const results = await onWasmAndCpu(() => {
        const a2 = seededTensor(transposeA ? [7, 5] : [5, 7], 40);
        const b2 = seededTensor(transposeB ? [3, 7] : [7, 3], 41);
        const a3 = seededTensor(transposeA ? [2, 7, 5] : [2, 5, 7], 42);
        const b3 = seededTensor(transposeB ? [2, 3, 7] : [2, 7, 3], 43);
        return [tf.matMul(a2, b2, transposeA, transposeB), tf.matMul(a3, b3, transposeA, transposeB)];
      });
      assertAllClose(results, 'matmul');
    });
  }

  it('where() on bool and int32 values matches cpu and leaves the wasm heap intact', async () => {
    const results = await onWasmAndCpu(() => {
      const out: tf.Tensor[] = [];
      for (let i = 0; i < 200; i++) {
        const latent = seededTensor([12 + (i % 40)], 50 + i);
        const above = tf.greater(latent, 0.5);
        const strongest = tf.equal(latent, tf.max(latent));
        // The DBC mask's pattern: a scalar condition broadcast over bool values.
        const mask = tf.cast(tf.where(tf.any(above), above, strongest), 'float32');
        const ints = tf.where(above, tf.cast(tf.mul(latent, 100), 'int32'), tf.zerosLike(latent).toInt());
        if (i % 50 === 0) out.push(mask, tf.cast(ints, 'float32'));
      }
      return out;
    });
    assertAllClose(results, 'where', 0);
  });

  it('sum and mean over leading axes (XNNPACK pooling) match cpu\'s double sums on 32k rows with an offset', async () => {
    // 3 + noise: a float32 running sum of 32k such values would drift past 1e-4.
    const results = await onWasmAndCpu(() => {
      const x = tf.add(seededTensor([8, 64, 64, 5], 40), 3);
      const out: tf.Tensor[] = [];
      for (const axes of [[0, 1, 2], [0, 1], [0]]) out.push(tf.sum(x, axes), tf.mean(x, axes), tf.mean(x, axes, true));
      out.push(tf.sum(tf.reshape(x, [32768, 5]), 0), tf.mean(tf.slice(x, [0, 0, 0, 0], [1, 1, 64, 5]), [0, 1, 2]));
      return out;
    });
    assertAllClose(results, 'leading-axis reduction', 1e-6);
  });

  it('add, sub and multiply by a per-channel vector (XNNPACK depthwise path) equal the element-wise ops bit for bit', async () => {
    await initBackend('wasm');
    const ops = { add: tf.add, sub: tf.sub, mul: tf.mul } as const;
    for (const shape of [[3, 5, 4, 6], [7, 9, 6], [11, 6]]) {
      const x = tf.mul(seededTensor(shape, 41), 100);
      for (const vShape of [[6], [...shape.slice(1).map(() => 1), 6].slice(-shape.length), [1, 6]]) {
        const v = tf.reshape(seededTensor([6], 42), vShape);
        const full = tf.broadcastTo(v, shape);
        for (const [name, op] of Object.entries(ops)) {
          for (const [label, ours, reference] of [
            ['x op v', op(x, v), op(x, full)],
            ['v op x', op(v, x), op(full, x)],
          ] as const) {
            assert.deepEqual(ours.shape, reference.shape);
            const got = ours.dataSync();
            const want = reference.dataSync();
            const differing = want.findIndex((w, k) => !Object.is(w, got[k]));
            assert.equal(differing, -1, `${name} ${label}, x ${shape.join('x')}, v ${vShape.join('x')}: element ${differing} is ${got[differing]}, not ${want[differing]}`);
            tf.dispose([ours, reference]);
          }
        }
        tf.dispose([v, full]);
      }
      x.dispose();
    }
  });

  it('mean gradient over leading, inner and all axes', async () => {
    const results = await onWasmAndCpu(() => {
      const x = seededTensor([4, 5, 3, 6], 10);
      return [[0, 1, 2], [1, 2], [3], [0, 1, 2, 3]].map((axes) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.mean(a, axes), seededTensor(tf.mean(a, axes).shape, 11))))(x));
    });
    assertAllClose(results, 'mean gradient');
  });

  it('training-mode batch norm (moments + batchNorm, as tfjs-layers) has the stock gradients', async () => {
    const results = await onWasmAndCpu(() => {
      const x = seededTensor([6, 5, 7, 4], 12);
      const gamma = tf.add(seededTensor([4], 13), 1.5);
      const beta = seededTensor([4], 14);
      const weights = seededTensor([6, 5, 7, 4], 15);
      const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, [0, 1, 2]);
        return tf.sum(tf.mul(weights, tf.batchNorm(a, mean, variance, b, g, 1e-3)));
      };
      return tf.grads(f)([x, gamma, beta]);
    });
    assertAllClose(results, 'batch norm');
  });

  // Our SIMD kernels, and without them the XNNPACK route; 4, 8 and 5 channels and 210, 27 and 12
  // pixels take the kernels' 4-channel blocks and single channels, paired and odd pixels.
  for (const [shape, simd] of [[6, 5, 7, 4], [9, 3, 8], [12, 5]].flatMap((s) => [[s, true], [s, false]] as Array<[number[], boolean]>)) {
    it(`fused training batch norm (rank ${shape.length}${simd ? '' : ', without SIMD kernels'}): output, batch statistics and gradients through all three equal moments + batchNorm on cpu`, async () => {
      const channels = shape[shape.length - 1];
      const axes = shape.slice(0, -1).map((_, i) => i);
      disableSimdKernels(!simd);
      const results = await onWasmAndCpu(() => {
        // An offset far above the spread: a variance taken as E[x^2] - mean^2 would lose it.
        const x = tf.add(seededTensor(shape, 40), 30);
        const gamma = tf.add(seededTensor([channels], 41), 1.5);
        const beta = seededTensor([channels], 42);
        const [wOut, wMean, wVar] = [seededTensor(shape, 43), seededTensor([channels], 44), seededTensor([channels], 45)];
        const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { output, mean, variance } = tf.getBackend() === 'wasm'
            ? batchNormInTraining(a, g, b, 1e-3)
            : (() => {
                const moments = tf.moments(a, axes);
                return { output: tf.batchNorm(a, moments.mean, moments.variance, b, g, 1e-3), ...moments };
              })();
          return { output, mean, variance };
        };
        const forward = f(x, gamma, beta);
        const onlyOutput = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(wOut, f(a, g, b).output)))([x, gamma, beta]);
        const allThree = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const { output, mean, variance } = f(a, g, b);
          return tf.addN([tf.sum(tf.mul(wOut, output)), tf.sum(tf.mul(wMean, mean)), tf.sum(tf.mul(wVar, variance))]);
        })([x, gamma, beta]);
        return [forward.output, forward.mean, forward.variance, ...onlyOutput, ...allThree];
      }).finally(() => disableSimdKernels(false));
      assertAllClose(results, 'fused batch norm', 2e-5);
    });
  }

  it('batch norm forward: per-channel, scalar and missing parameters, and full-shape ones', async () => {
    const results = await onWasmAndCpu(() => {
      const x = seededTensor([3, 5, 4, 6], 28);
      const vector = (seed: number) => seededTensor([6], seed);
      const positive = (t: tf.Tensor) => tf.add(tf.abs(t), 0.2);
      return [
        tf.batchNorm(x, vector(29), positive(vector(30)), vector(31), vector(32), 1e-3),
        tf.batchNorm(x, vector(33), positive(vector(34)), undefined, undefined, 1e-5),
        tf.batchNorm(x, tf.scalar(0.3), tf.scalar(2), tf.scalar(-1), tf.scalar(1.5), 1e-3),
        tf.batchNorm(x, seededTensor([3, 5, 4, 6], 36), positive(seededTensor([3, 5, 4, 6], 37)), seededTensor([3, 5, 4, 6], 38), seededTensor([3, 5, 4, 6], 39), 1e-3),
      ];
    });
    assertAllClose(results, 'batch norm forward');
  });

  it('batch norm gradients wrt independent mean and variance inputs', async () => {
    const results = await onWasmAndCpu(() => {
      const x = seededTensor([3, 4, 5, 6], 16);
      const mean = seededTensor([6], 17);
      const variance = tf.add(tf.abs(seededTensor([6], 18)), 0.5);
      const gamma = seededTensor([6], 19);
      const beta = seededTensor([6], 20);
      const weights = seededTensor([3, 4, 5, 6], 21);
      const f = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(weights, tf.batchNorm(a, m, v, b, g, 1e-3)));
      return tf.grads(f)([x, mean, variance, gamma, beta]);
    });
    assertAllClose(results, 'batch norm inputs');
  });

  it('every variable gradient of a mixed tfjs-layers model matches cpu', async () => {
    const results = await onWasmAndCpu(() => {
      const input = tf.input({ shape: [15, 13, 3] });
      // A conv bias followed by BN has a zero gradient (BN removes the mean), so no bias there.
      let h = tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
      h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
      h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
      h = tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, depthwiseInitializer: tf.initializers.glorotUniform({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
      const pooledMax = tf.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(h) as tf.SymbolicTensor;
      const pooledAvg = tf.layers.averagePooling2d({ poolSize: 2, strides: 2, padding: 'same' }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.add().apply([pooledMax, pooledAvg]) as tf.SymbolicTensor;
      h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
      const output = tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }).apply(h) as tf.SymbolicTensor;
      const model = tf.model({ inputs: input, outputs: output });
      const x = seededTensor([5, 15, 13, 3], 22);
      const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 1], 'int32'), 4);
      // Layer names (and so variable names) differ between the two builds: keep the model's order.
      const variables = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
      const { grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        variables,
      );
      const out = variables.map((v) => grads[v.name]);
      model.dispose();
      return out;
    });
    assert.strictEqual(results.wasm.length, 10);
    assertAllClose(results, 'model gradients');
  });

  it('relative error detects a wrong gradient (the comparison can fail)', () => {
    assert.ok(relativeError([1, 2, 3.001], [1, 2, 3]) > 1e-4);
  });
});
