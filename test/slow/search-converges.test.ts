/**
 * The budget loss, not the projection, brings the masks onto the MACs target: short searches
 * (builtin:default on the sample data, 1 pretraining epoch, 2 search epochs of 27 steps) end
 * within 5% of the target before the projection, for three seeds. Before the hold phase settled
 * (docs/search.md, "Settling"), these ended 5.6% under (seed 1), ... (seeds 2, 3): where the search
 * stopped was a sample of the masks' swing around the target. About a minute per seed on 2 shared
 * cores: kept out of `npm test`; run with `npm run test:slow`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { strict as assert } from 'assert';
import type { DoneEvent } from '../../src/shared/workerProtocol';
import { makeTempDir, parseEvents, runCli } from '../support/cli';

describe('a short search ends on the MACs budget before the projection', function () {
  this.timeout(900_000);
  let work: string;
  before(() => (work = makeTempDir('pas-converge-')));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: the masks end within 5% of a 50% target`, () => {
      const result = runCli([
        'search', 'builtin:default', '--data', 'sample', '--max-train', '960', '--max-test', '100', '--batch-size', '32', '--seed', String(seed),
        '--target-macs', '0.5', '--pretrain-epochs', '1', '--search-epochs', '2', '--finetune-epochs', '0', '--alpha', '8',
        '--backend', 'wasm', '--out', path.join(work, `seed-${seed}`), '--json',
      ]);
      assert.equal(result.status, 0, result.stderr.slice(-3000));
      const report = (parseEvents(result.stdout).find((e) => e.type === 'done') as DoneEvent).report!;
      const off = report.searchEndMacsFraction! / report.targetFraction - 1;
      assert.ok(Math.abs(off) <= 0.05, `the search ended at ${report.searchEndMacsFraction} for a ${report.targetFraction} target (${(100 * off).toFixed(1)}%)`);
    });
  }
});
