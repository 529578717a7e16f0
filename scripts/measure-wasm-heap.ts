/**
 * Measures how much tensor memory the wasm backend can hold before its heap gives out, and
 * whether the backend still works afterwards. Run in a child process (an abort may leave the
 * wasm module unusable): `npx tsx scripts/measure-wasm-heap.ts`. Prints one JSON line.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backends';

const CHUNK_BYTES = 64 * 1024 * 1024;

async function main(): Promise<void> {
  await initBackend('wasm');
  const held: tf.Tensor[] = [];
  let allocated = 0;
  let failure = '';
  const heapSize = () => ((tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.byteLength);
  let heapBytes = heapSize();
  for (;;) {
    try {
      // fill() writes every page, so the allocation is real, not lazily reserved.
      // An op's output is allocated by the wasm kernel, in the wasm heap.
      const t = tf.tidy(() => tf.add(tf.zeros([CHUNK_BYTES / 4], 'float32'), tf.scalar(1)));
      held.push(t);
      heapBytes = heapSize();
      allocated += CHUNK_BYTES;
    } catch (error) {
      failure = String(error instanceof Error ? error.message : error).split('\n')[0];
      break;
    }
  }
  let usableAfter = false;
  try {
    tf.dispose(held);
    usableAfter = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(2)).dataSync()[0]) === 3;
  } catch {
    usableAfter = false;
  }
  process.stdout.write(JSON.stringify({ allocatedBytes: allocated, allocatedMiB: allocated / 2 ** 20, heapBytesAtLastSuccess: heapBytes, failure, usableAfter, rssBytes: process.memoryUsage().rss }) + '\n');
}
main();
