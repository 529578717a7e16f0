/**
 * A short PaS search (no pretraining, one search and one fine-tuning epoch on a few images of the
 * bundled sample) through the CLI on every classifier family of test/support/families.ts, saved as
 * a user's model.json: it must finish, land on the MACs target (under it by less than one
 * channel's MACs), and write a deployed model equal to the fine-tuned masked one. Part of `npm run test:models` (slower than the unit tests).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { DoneEvent } from '../../src/shared/workerProtocol';
import { summarizeGraph } from '../../src/engine/graph/counting';
import { graphFromModel } from '../../src/engine/graph/modelGraph';
import { saveLayersModelToDir } from '../../src/engine/io';
import { insertMasks } from '../../src/engine/transform/masks';
import { keptChannelsFromMasks, pruneGraph } from '../../src/engine/transform/prune';
import { reparameterizeGraph } from '../../src/engine/transform/reparameterize';
import { makeTempDir, parseEvents, runCli } from '../support/cli';
import { FAMILIES } from '../support/families';

/**
 * The largest MACs one channel of any prunable group costs in the deployed form at full width.
 * The projection onto the budget ends at or under the target and closer to it than one channel
 * (it drops channels until the MACs fit, or adds back every channel that still fits), and a
 * channel costs less once its neighbours are pruned: 0 <= target - after < this step.
 */
function largestOneChannelStep(model: tf.LayersModel): number {
  const graph = graphFromModel(model);
  const full = summarizeGraph(reparameterizeGraph(graph)).totalMacs;
  const { graph: masked, layout } = insertMasks(graph);
  let largest = 0;
  for (const [group, layerName] of layout.layerOfGroup) {
    const latent = masked.weights.get(layerName)!.latent.values;
    if (latent.length < 2) continue;
    latent[0] = 0.2;
    const kept = keptChannelsFromMasks(masked);
    largest = Math.max(largest, full - summarizeGraph(reparameterizeGraph(pruneGraph(masked, kept))).totalMacs);
    latent[0] = 1;
    assert.ok(kept.get(group)!.length === latent.length - 1);
  }
  return largest;
}

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
      const step = largestOneChannelStep(model);
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
      const gap = targetMacs - macsAfter;
      assert.ok(gap >= -1e-6 * targetMacs && gap < step, `${family.name}: MACs after ${macsAfter} vs target ${targetMacs} (ratio ${(macsAfter / targetMacs).toFixed(4)}); one channel costs at most ${step}`);
      assert.ok(reparamMaxAbsDiff <= 1e-4, `${family.name}: deployed vs masked max diff ${reparamMaxAbsDiff}`);
      assert.ok(fs.existsSync(path.join(out, 'deployed', 'model.json')));
    });
  });
});
