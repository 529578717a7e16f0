/**
 * One process of bench:throughput's two-process measurement: the forward and backward pass of a
 * net at a batch on wasm (what each data-parallel worker computes; the update, which the workers
 * split, left out), timed while a twin process does the same. Two independent processes share
 * nothing (no exchange, no waiting), so their summed img/s at half the batch shows what the
 * machine's two cores give when both are busy (not a strict bound on two workers: each process
 * also runs its own V8 helper threads).
 *
 * Usage: node dist/bench/concurrent-step.js NET BATCH SECONDS
 * Prints "ready" once warmed up, waits for a line on stdin (the parent releases both twins at
 * once), then prints {"imagesPerSecond": n} and exits.
 */
import * as readline from 'readline';
import { initBackend } from '../src/engine/backends';
import { ALL_NETS, makeWorkload, timeSteps, type NetName } from './workloads';

async function main(): Promise<void> {
  const [net, batchArg, secondsArg] = process.argv.slice(2);
  if (!(net in ALL_NETS)) throw new Error(`concurrent-step: unknown net '${net}'`);
  const batch = Number(batchArg);
  const seconds = Number(secondsArg);
  await initBackend('wasm');
  const work = makeWorkload(net as NetName, batch);
  for (let i = 0; i < 3; i++) work.gradients();
  const lines = readline.createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  process.stdout.write('ready\n');
  await go;
  lines.close();
  const timing = timeSteps(work.gradients, batch, seconds, 0);
  work.dispose();
  process.stdout.write(`${JSON.stringify({ imagesPerSecond: timing.imagesPerSecond })}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
