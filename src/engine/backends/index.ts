/**
 * The backend ladder: pick the fastest TensorFlow.js backend this machine can run.
 *
 * `auto` tries, in order: `@tensorflow/tfjs-node-gpu` (CUDA), `@tensorflow/tfjs-node` (native
 * libtensorflow, multi-threaded), wasm (XNNPACK, with our training kernels), cpu (pure JS, slow).
 * The native packages are not dependencies of this project (their install downloads
 * libtensorflow), so they are loaded with a runtime `require` that a missing module turns into a
 * normal fallback.
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';
import type { BackendChoice, BackendName } from '../../shared/workerProtocol';
import { loadedTfjsCoreCopies, loadNativePackage, NativeLoadError } from './nativeLoader';
import { installDilatedConvGradients } from './dilated-conv-gradients';
import { registerWasmTrainingKernels } from './wasm-gradients';

export type { BackendChoice, BackendName };

/** What `initBackend` settled on. */
export interface BackendInfo {
  name: BackendName;
  /** Threads the backend computes with (wasm in Node is single-threaded). */
  threads: number;
  /** Why a faster backend was not used, or how to get one. */
  note?: string;
}

export interface BackendOptions {
  /**
   * A folder where `npm install @tensorflow/tfjs-node(-gpu) --prefix DIR` installed a native
   * package (`--native-dir`, `PAS_NATIVE_DIR`): the native rungs load from there only, sharing the
   * engine's tfjs (nativeLoader.ts). Without it they load from wherever Node finds them.
   */
  nativeDir?: string;
}

const NATIVE_PACKAGES: Record<'node' | 'node-gpu', string> = {
  'node-gpu': '@tensorflow/tfjs-node-gpu',
  node: '@tensorflow/tfjs-node',
};

/** How to get a native backend; the version must match @tensorflow/tfjs so both share one engine. */
function installHint(name: 'node' | 'node-gpu'): string {
  return `npm install ${NATIVE_PACKAGES[name]}@${tf.version.tfjs} (it downloads libtensorflow${
    name === 'node-gpu' ? ' for CUDA' : ''
  } while installing)`;
}

/**
 * Loads a native binding package by name at run time. A variable name keeps bundlers from trying to
 * resolve it at build time; esbuild also lists these packages as external.
 */
function requireOptional(packageName: string): unknown {
  const runtimeRequire: NodeRequire = require;
  return runtimeRequire(packageName);
}

function isModuleNotFound(error: unknown, packageName: string): boolean {
  const e = error as { code?: string; message?: string };
  return e?.code === 'MODULE_NOT_FOUND' && (e.message ?? '').includes(packageName);
}

async function tryNative(name: 'node' | 'node-gpu', nativeDir: string | undefined): Promise<BackendInfo> {
  const packageName = NATIVE_PACKAGES[name];
  if (nativeDir !== undefined) {
    try {
      loadNativePackage(nativeDir, packageName, tf.version.tfjs);
    } catch (error) {
      if (error instanceof NativeLoadError) throw new Error(`backend '${name}': ${error.message}`);
      throw error;
    }
  } else {
    try {
      requireOptional(packageName);
    } catch (error) {
      if (isModuleNotFound(error, packageName)) {
        throw new Error(`backend '${name}' needs ${packageName}, which is not installed: ${installHint(name)}`);
      }
      throw new Error(`backend '${name}': ${packageName} failed to load: ${(error as Error).message.split('\n')[0]}`);
    }
    const copies = loadedTfjsCoreCopies();
    if (copies.length > 1) throw new Error(`backend '${name}': ${packageName} loaded a second @tensorflow/tfjs-core (${copies.join(', ')})`);
  }
  // Both native packages register their backend as 'tensorflow'.
  if (!(await tf.setBackend('tensorflow'))) {
    throw new Error(`backend '${name}': ${packageName} loaded but its 'tensorflow' backend did not initialize`);
  }
  // libtensorflow with CUDA still starts without a usable GPU (driver, CUDA 11.2 or cuDNN 8.1
  // missing) and then computes on the CPU: say so instead of claiming a GPU run. The flag is the
  // native backend's own (NodeJSKernelBackend.isUsingGpuDevice).
  const usingGpu = (tf.backend() as { isUsingGpuDevice?: unknown }).isUsingGpuDevice;
  if (name === 'node-gpu' && usingGpu === false) {
    return { name, threads: os.cpus().length, note: `${packageName} found no usable GPU (NVIDIA driver, CUDA 11.2 or cuDNN 8.1 missing?) and computes on the CPU` };
  }
  return { name, threads: os.cpus().length };
}

async function tryWasm(): Promise<BackendInfo> {
  const wasm = requireOptional('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error("the wasm backend did not initialize");
  // After initialization: the stock kernels we wrap have run their setup by then.
  registerWasmTrainingKernels();
  return { name: 'wasm', threads: wasm.getThreadsCount() };
}

async function useCpu(): Promise<BackendInfo> {
  await tf.setBackend('cpu');
  return { name: 'cpu', threads: 1 };
}

function ladder(options: BackendOptions): Record<BackendName, () => Promise<BackendInfo>> {
  return {
    'node-gpu': () => tryNative('node-gpu', options.nativeDir),
    node: () => tryNative('node', options.nativeDir),
    wasm: tryWasm,
    cpu: useCpu,
  };
}

/**
 * Activates a backend and returns what was chosen. Forcing a backend that cannot load throws an
 * Error that says how to get it; `auto` falls down the ladder and explains in `note` what was
 * skipped. Safe to call repeatedly (with the same or another choice).
 */
export async function initBackend(choice: BackendChoice, options: BackendOptions = {}): Promise<BackendInfo> {
  // Gradients are registered globally, for whichever backend runs them.
  installDilatedConvGradients();
  const rungs = ladder(options);
  if (choice !== 'auto') return rungs[choice]();
  const skipped: string[] = [];
  for (const name of ['node-gpu', 'node', 'wasm', 'cpu'] as const) {
    try {
      const info = await rungs[name]();
      const notes = [...skipped, ...(info.note ? [info.note] : [])];
      if (notes.length > 0) info.note = notes.join('; ');
      return info;
    } catch (error) {
      skipped.push((error as Error).message);
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.join('; ')}`);
}
