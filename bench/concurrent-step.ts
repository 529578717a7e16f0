/**
 * One process of bench:throughput's two-process measurement: the bare wasm training step of a
 * net at a batch, timed while a twin process does the same. Two independent processes share
 * nothing (no exchange, no waiting), so their summed img/s at half the batch is the most two
 * data-parallel workers could give on this machine, whatever its cores do when both are busy.
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
  for (let i = 0; i < 3; i++) work.train();
  const lines = readline.createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  process.stdout.write('ready\n');
  await go;
  lines.close();
  const timing = timeSteps(work.train, batch, seconds, 0);
  work.dispose();
  process.stdout.write(`${JSON.stringify({ imagesPerSecond: timing.imagesPerSecond })}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});
