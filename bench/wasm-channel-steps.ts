/**
 * `node esbuild.js && node dist/bench/wasm-channel-steps.js`: the evidence behind `--round-to auto`
 * (src/engine/budgetPreview.ts). Times a 1x1 conv at 56x56 on the wasm backend as its OUTPUT
 * channels go through 40..64 (144 -> c, fused relu: how a pruned layer's own conv runs), and as
 * its INPUT channels do (c -> 96: how the next layer runs). If XNNPACK computes output channels in
 * tiles of 8, the first column climbs in steps (41..48 cost the same, 49..56 the same) while the
 * second climbs smoothly. Prints the fastest and the median of 40 interleaved runs (ms); the
 * fastest is the least disturbed on a shared machine. Nothing is written.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backends';

const RUNS = 40;
const WARMUP = 3;
const WIDTHS = [40, 41, 44, 47, 48, 49, 52, 56, 57, 64];
const SIZE = 56;
const PRODUCER_INPUT = 144;
const CONSUMER_OUTPUT = 96;

async function main(): Promise<void> {
  await initBackend('wasm');
  const x = tf.randomUniform([1, SIZE, SIZE, PRODUCER_INPUT]) as tf.Tensor4D;
  const cases = WIDTHS.map((c) => ({
    c,
    producer: tf.randomUniform([1, 1, PRODUCER_INPUT, c]) as tf.Tensor4D,
    bias: tf.zeros([c]) as tf.Tensor1D,
    consumerInput: tf.randomUniform([1, SIZE, SIZE, c]) as tf.Tensor4D,
    consumer: tf.randomUniform([1, 1, c, CONSUMER_OUTPUT]) as tf.Tensor4D,
  }));
  const asOutput = WIDTHS.map((): number[] => []);
  const asInput = WIDTHS.map((): number[] => []);
  const time = (run: () => tf.Tensor) => {
    const start = performance.now();
    tf.tidy(() => { run().dataSync(); });
    return performance.now() - start;
  };
  for (let r = 0; r < WARMUP + RUNS; r++) {
    cases.forEach((k, i) => {
      const out = time(() => tf.fused.conv2d({ x, filter: k.producer, strides: 1, pad: 'same', bias: k.bias, activation: 'relu' }));
      const inp = time(() => tf.fused.conv2d({ x: k.consumerInput, filter: k.consumer, strides: 1, pad: 'same' }));
      if (r >= WARMUP) {
        asOutput[i].push(out);
        asInput[i].push(inp);
      }
    });
  }
  const fastestAndMedian = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return `${sorted[0].toFixed(3)} / ${sorted[sorted.length >> 1].toFixed(3)}`;
  };
  console.log(`| channels c | 1x1 conv ${PRODUCER_INPUT} -> c, ${SIZE}x${SIZE} (ms: fastest / median of ${RUNS}) | 1x1 conv c -> ${CONSUMER_OUTPUT} |`);
  console.log('| ---: | ---: | ---: |');
  WIDTHS.forEach((c, i) => console.log(`| ${c} | ${fastestAndMedian(asOutput[i])} | ${fastestAndMedian(asInput[i])} |`));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
