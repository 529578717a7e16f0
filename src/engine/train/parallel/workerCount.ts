import * as os from 'os';

/** `--workers` / `pas.workers`: 'auto' (one per core) or a positive count. */
export type WorkersChoice = 'auto' | number;

/** The cores this process may use (cgroup-aware where Node knows it). */
export function coreCount(): number {
  return Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

/** Threads that train: 'auto' is the core count; data parallelism is for the wasm backend only
 * (the native backends already use every core inside each kernel; cpu is too slow to matter). */
export function resolveWorkers(choice: WorkersChoice | undefined, backend: string): number {
  if (backend !== 'wasm') return 1;
  return choice === undefined || choice === 'auto' ? coreCount() : Math.max(1, Math.floor(choice));
}

/** Parses a --workers value; undefined for anything else. */
export function parseWorkers(text: string): WorkersChoice | undefined {
  if (text === 'auto') return 'auto';
  return /^[1-9][0-9]{0,2}$/.test(text) ? Number(text) : undefined;
}
