/**
 * A long search keeps flat memory: 120 epochs of the default model on a tiny slice of the sample
 * data (two batches an epoch, a checkpoint after every epoch), with the default worker count (one
 * training thread per core: the data-parallel replicas included). The worker reports its live
 * tensor count and resident memory with every epoch event. Node runs with --expose-gc, so the job
 * (and each replica, once an epoch) collects garbage before the figure is read: it is then memory
 * the process keeps. Without that, V8's lazy collection alone moved a one-thread run's figure by
 * +57 MiB over these 100 epochs (2026-11-29), as much as the leak this test is there to catch.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { EpochEvent } from '../../src/shared/workerProtocol';
import { makeTempDir, parseEvents, runCli } from '../support/cli';

describe('faults: memory over a long search', function () {
  this.timeout(900_000);
  let work: string;
  before(() => (work = makeTempDir('pas-long-')));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('120 epochs: the tensor count is flat within each phase and resident memory stays bounded', () => {
    const result = runCli([
      'search', 'builtin:default', '--data', 'sample', '--max-train', '64', '--max-test', '50', '--batch-size', '32',
      '--pretrain-epochs', '2', '--search-epochs', '59', '--finetune-epochs', '59', '--target-macs', '0.5',
      '--out', path.join(work, 'run'), '--json', '--backend', 'wasm',
    ], { timeoutMs: 840_000, nodeArgs: ['--expose-gc'] });
    assert.equal(result.status, 0, result.stderr.slice(-2000));
    const epochs = parseEvents(result.stdout).filter((e): e is EpochEvent => e.type === 'epoch');
    assert.equal(epochs.length, 120);
    for (const phase of ['search', 'finetune'] as const) {
      const counts = epochs.filter((e) => e.phase === phase).map((e) => e.tensors!);
      assert.ok(counts.every((c) => Number.isInteger(c) && c > 0), `${phase}: tensor counts missing`);
      // The first epoch of a phase may allocate (optimizer slots are per epoch and freed); after it, flat.
      const steady = counts.slice(1);
      assert.ok(steady.every((c) => c === steady[0]), `${phase}: tensor count drifts: ${steady.join(',')}`);
    }
    // Resident memory after collection: from epoch 20 on, no epoch's figure exceeds epoch 20's by
    // 24 MiB (a leak of one model copy per epoch would add ~0.7 MB x 100 = 70 MB; of one batch,
    // far more). Measured with the fix: +2.3 MiB with one thread, +5.2 MiB with two.
    const rss = epochs.map((e) => e.rssBytes!);
    const growth = Math.max(...rss.slice(19)) - rss[19];
    assert.ok(growth < 24 * 1024 * 1024, `resident memory grew by ${(growth / 1048576).toFixed(1)} MiB from epoch 20 to 120`);
    process.stderr.write(`      tensors search ${epochs[3].tensors}, finetune ${epochs[epochs.length - 1].tensors}; rss epoch 20 ${(rss[19] / 1048576).toFixed(0)} MiB -> epoch 120 ${(rss[rss.length - 1] / 1048576).toFixed(0)} MiB\n`);
  });
});
