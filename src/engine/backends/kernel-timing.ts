/**
 * Per-kernel wall time of a piece of work, for backends whose `tf.profile` timings are
 * misleading: wasm has no kernel timer, so `tf.profile` calls `dataSync()` on every output inside
 * the timed region and charges each kernel for copying its output out of the heap (about as long
 * as an element-wise op itself).
 *
 * Here every kernel registered for the backend is wrapped with a timer for the duration of `run`.
 * Kernels that call other kernels (ours compose XNNPACK convs) are charged once, at the outer level.
 * The clock is the process's CPU time (`process.cpuUsage`, microseconds): on a machine shared
 * with other jobs, wall time also counts the moments the OS gave our core to someone else.
 * Single-threaded backends only (wasm, cpu): a multi-threaded kernel's CPU time exceeds its wall time.
 */
import * as tf from '@tensorflow/tfjs';

export interface KernelTime {
  name: string;
  /** CPU milliseconds. */
  ms: number;
  calls: number;
}

/** CPU time of this process in milliseconds. */
function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Runs `work` with every kernel of `backendName` timed; returns CPU times, largest first. */
export function timeKernels(backendName: string, work: () => void): { totalMs: number; kernels: KernelTime[] } {
  const originals = tf.getKernelsForBackend(backendName);
  const times = new Map<string, KernelTime>();
  let depth = 0;
  for (const config of originals) {
    const inner = config.kernelFunc;
    const timed: tf.KernelFunc = (args) => {
      if (depth > 0) return inner(args);
      depth++;
      const start = cpuNow();
      try {
        return inner(args);
      } finally {
        depth--;
        const entry = times.get(config.kernelName) ?? { name: config.kernelName, ms: 0, calls: 0 };
        entry.ms += cpuNow() - start;
        entry.calls++;
        times.set(config.kernelName, entry);
      }
    };
    tf.unregisterKernel(config.kernelName, backendName);
    tf.registerKernel({ ...config, kernelFunc: timed });
  }
  const start = cpuNow();
  try {
    work();
  } finally {
    for (const config of originals) {
      tf.unregisterKernel(config.kernelName, backendName);
      tf.registerKernel(config);
    }
  }
  const totalMs = cpuNow() - start;
  return { totalMs, kernels: [...times.values()].sort((a, b) => b.ms - a.ms) };
}
