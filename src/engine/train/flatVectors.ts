/**
 * Flat float32 vectors for the optimizer step (weights, gradients, momentum), allocated in one
 * shared WebAssembly.Memory so that flatMomentum.wat's SIMD step can run over them: the JS loop
 * took ~3-4 ns per weight and step (RepVGG-A0 x0.5, 2M weights: 6.4 ms a step on one thread,
 * 4 ms for each thread's half in data-parallel training), the SIMD step a fraction of that.
 *
 * The memory is shared so that data-parallel threads can each instantiate the step on it and
 * update their own ranges of the same vectors (train/parallel/exchange.ts). Where the memory
 * cannot be made (vectors past wasm32's 4 GB, a runtime without wasm SIMD or threads) the
 * vectors live in a plain SharedArrayBuffer and FlatMomentum keeps its JS loop.
 */
import { FLAT_MOMENTUM_WASM_BASE64 } from '../backends/simd/flatMomentumWasm';

/** The SIMD momentum step (see flatMomentum.wat for the arithmetic); pointers are byte offsets into the memory. */
export type MomentumStep = (
  weights: number,
  accumulation: number,
  gradients: number,
  gradientStride: number,
  count: number,
  from: number,
  to: number,
  momentum: number,
  step: number,
  half: number,
) => number;

/** Where flat vectors live: a wasm memory (SIMD step available) or a plain shared buffer. */
export interface FlatVectorStore {
  /** Present when the SIMD step can run over the vectors. Posting it to a worker shares the memory. */
  memory?: WebAssembly.Memory;
  /** Present when `memory` is not: the vectors' buffer. */
  buffer?: SharedArrayBuffer;
  /** Byte offset of each vector, 16-byte aligned. */
  offsets: number[];
  lengths: number[];
}

const PAGE_BYTES = 65536;
const MAX_PAGES = 65536;

let compiled: WebAssembly.Module | null | undefined;
let disabled = false;
/** This thread's SIMD step for each memory buffer it was bound to. */
const steps = new WeakMap<ArrayBufferLike, MomentumStep>();

/** Test seam: allocate plain shared buffers (the JS loop) instead of wasm memory, to compare the two. */
export function disableSimdMomentum(off: boolean): void {
  disabled = off;
}

function momentumModule(): WebAssembly.Module | undefined {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(FLAT_MOMENTUM_WASM_BASE64, 'base64'));
    } catch {
      // No wasm SIMD or threads in this runtime.
      compiled = null;
    }
  }
  return compiled ?? undefined;
}

/** Vectors of the given lengths in one store (each 16-byte aligned). */
export function allocateFlatVectors(lengths: number[]): FlatVectorStore {
  const offsets: number[] = [];
  let bytes = 0;
  for (const length of lengths) {
    offsets.push(bytes);
    bytes += Math.ceil((length * 4) / 16) * 16;
  }
  const pages = Math.max(1, Math.ceil(bytes / PAGE_BYTES));
  if (!disabled && pages <= MAX_PAGES && momentumModule()) {
    try {
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      return { memory, offsets, lengths };
    } catch {
      // Address space refused: fall through to a plain buffer.
    }
  }
  return { buffer: new SharedArrayBuffer(Math.max(16, bytes)), offsets, lengths };
}

/** The buffer the store's vectors are views of, in this thread (binding the SIMD step to it once). */
function storeBuffer(store: FlatVectorStore): SharedArrayBuffer {
  if (!store.memory) return store.buffer!;
  const buffer = store.memory.buffer as unknown as SharedArrayBuffer;
  if (!steps.has(buffer)) {
    const module = momentumModule();
    if (module) {
      const instance = new WebAssembly.Instance(module, { env: { memory: store.memory } });
      steps.set(buffer, instance.exports.momentumStep as MomentumStep);
    }
  }
  return buffer;
}

/** Float32Array views of the store's vectors, in this thread. */
export function flatVectorViews(store: FlatVectorStore): Float32Array[] {
  const buffer = storeBuffer(store);
  return store.lengths.map((length, i) => new Float32Array(buffer, store.offsets[i], length));
}

/** The SIMD step bound to `buffer` in this thread, if `buffer` is a store's wasm memory. */
export function momentumStepFor(buffer: ArrayBufferLike): MomentumStep | undefined {
  return steps.get(buffer);
}
