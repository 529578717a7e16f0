/**
 * A short PaS search (no pretraining, one search and one fine-tuning epoch on a few images of the
 * bundled sample) through the CLI on every classifier family of test/support/families.ts, saved as
 * a user's model.json: it must finish, land on the MACs target, and write a deployed model equal
 * to the fine-tuned masked one. Part of `npm run test:models` (slower than the unit tests).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { DoneEvent } from '../../src/shared/workerProtocol';
import { saveLayersModelToDir } from '../../src/engine/io';
import { makeTempDir, parseEvents, runCli } from '../support/cli';
import { FAMILIES } from '../support/families';

/** Every group moves in whole channels: the projection lands within a few percent on these tiny models. */
const TARGET_SLACK = 0.03;

describe('families: a short search through the CLI reaches the MACs target', function () {
  this.timeout(600_000);
  let work: string;

  before(async () => {
    await tf.setBackend('cpu');
    work = makeTempDir('pas-families-search-');
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  FAMILIES.filter((f) => f.classifier).forEach((family, index) => {
    it(`${family.name}: search -> prune -> deploy at 50% of the MACs`, async () => {
      const modelDir = path.join(work, family.name);
      const model = family.build(3000 + index);
      await saveLayersModelToDir(model, modelDir, { overwrite: true });
      model.dispose();
      const out = path.join(work, `${family.name}-run`);
      const result = runCli([
        'search', path.join(modelDir, 'model.json'), '--data', 'sample', '--max-train', '64', '--max-test', '32', '--batch-size', '16',
        '--pretrain-epochs', '0', '--search-epochs', '1', '--finetune-epochs', '1', '--target-macs', '0.5', '--backend', 'wasm', '--seed', '4', '--out', out, '--json',
      ]);
      assert.strictEqual(result.status, 0, `${family.name}: exit ${result.status}\n${result.stderr.slice(-3000)}`);
      const done = parseEvents(result.stdout).find((e) => e.type === 'done') as DoneEvent | undefined;
      assert.ok(done?.report, `${family.name}: no done event`);
      const { macsAfter, targetMacs, macsBefore, reparamMaxAbsDiff } = done.report;
      assert.ok(macsAfter < macsBefore, `${family.name}: MACs ${macsBefore} -> ${macsAfter}`);
      const ratio = macsAfter / targetMacs;
      assert.ok(Math.abs(ratio - 1) <= TARGET_SLACK, `${family.name}: MACs after ${macsAfter} vs target ${targetMacs} (ratio ${ratio.toFixed(4)})`);
      assert.ok(reparamMaxAbsDiff <= 1e-4, `${family.name}: deployed vs masked max diff ${reparamMaxAbsDiff}`);
      assert.ok(fs.existsSync(path.join(out, 'deployed', 'model.json')));
    });
  });
});
