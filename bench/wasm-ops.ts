/**
 * `node esbuild.js && node dist/bench/wasm-ops.js`: what single tfjs ops cost on the wasm backend
 * at MobileNetV2's largest maps (112x112 with 96, 48, 47 and 40 channels), to see which deployed
 * forms are fast (docs/latency.md): ReLU6 as the ReLU layer computes it (relu + clipByValue) or as
 * the 'relu6' activation does (minimum(6, relu(x))); a conv with and without a fused activation;
 * a depthwise conv with the separate bias add tfjs-layers does; explicit zero padding before a
 * 'valid' stride-2 depthwise conv against the 'same' one; widths that are and are not multiples of 8.
 * Prints the fastest and the median of 22 interleaved runs per op (ms); nothing is written.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backends';

const RUNS = 22;
const WARMUP = 3;

function opsAt(channels: number): Record<string, () => tf.Tensor> {
  const x = tf.randomUniform([1, 112, 112, channels], -3, 9) as tf.Tensor4D;
  const narrow = tf.randomUniform([1, 112, 112, 16], -1, 1) as tf.Tensor4D;
  const pointwise = tf.randomUniform([1, 1, 16, channels], -1, 1) as tf.Tensor4D;
  const bias = tf.zeros([channels]) as tf.Tensor1D;
  const depthwise = tf.randomUniform([3, 3, channels, 1], -1, 1) as tf.Tensor4D;
  const fused = (activation: 'linear' | 'relu' | 'relu6') => tf.fused.conv2d({ x: narrow, filter: pointwise, strides: 1, pad: 'same', bias, activation });
  return {
    'relu': () => tf.relu(x),
    'relu + clipByValue (ReLU layer, max_value 6)': () => tf.clipByValue(tf.relu(x), 0, 6),
    'minimum(6, relu) (relu6 activation)': () => tf.minimum(6, tf.relu(x)),
    'tf.relu6 op': () => tf.relu6(x),
    'fused 1x1 conv, linear': () => fused('linear'),
    'fused 1x1 conv, relu': () => fused('relu'),
    'fused 1x1 conv, relu6': () => fused('relu6'),
    'depthwise 3x3': () => tf.depthwiseConv2d(x, depthwise, 1, 'same'),
    'depthwise 3x3 + bias add (DepthwiseConv2D layer)': () => tf.add(tf.depthwiseConv2d(x, depthwise, 1, 'same'), bias),
    'zero pad (0,1),(0,1)': () => tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]),
    'pad + valid stride-2 depthwise': () => tf.depthwiseConv2d(tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]) as tf.Tensor4D, depthwise, 2, 'valid'),
    'same stride-2 depthwise': () => tf.depthwiseConv2d(x, depthwise, 2, 'same'),
  };
}

async function main(): Promise<void> {
  await initBackend('wasm');
  const widths = [96, 48, 47, 40];
  const cases = widths.map(opsAt);
  const names = Object.keys(cases[0]);
  const samples = cases.map(() => names.map((): number[] => []));
  for (let r = 0; r < WARMUP + RUNS; r++) {
    cases.forEach((ops, i) => names.forEach((name, j) => {
      const start = performance.now();
      tf.tidy(() => { ops[name]().dataSync(); });
      if (r >= WARMUP) samples[i][j].push(performance.now() - start);
    }));
  }
  const fastestAndMedian = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return `${sorted[0].toFixed(2)} / ${sorted[sorted.length >> 1].toFixed(2)}`;
  };
  console.log(`| op (ms: fastest / median of ${RUNS}) | ${widths.map((w) => `112x112x${w}`).join(' | ')} |`);
  console.log(`| --- | ${widths.map(() => '---:').join(' | ')} |`);
  names.forEach((name, j) => console.log(`| ${name} | ${cases.map((_, i) => fastestAndMedian(samples[i][j])).join(' | ')} |`));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
