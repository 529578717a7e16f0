/**
 * Every architecture family of test/support/families.ts, built from stock tfjs layers with random
 * weights and BN statistics, goes through what a user's model goes through:
 * - it loads from its model.json and `inspect` shows it (never refused), with per-layer MACs equal
 *   to the count test/support/families-macs.ts writes from the layer configs;
 * - for random masks (and for masks whose every latent is below the threshold) the pruned model
 *   computes what the masked one computes, and the deployed model (pruned, fused, BN folded)
 *   computes what the training-time one computes, within 1e-5 of the output's scale;
 * - the deployed model loads in stock tfjs (tf.io.fromMemory) and keeps no BatchNormalization
 *   that follows a conv or dense layer (all of them, except where BN precedes a conv).
 * The short searches are in test/models/families-search.test.ts (npm run test:models).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { deployGraph } from '../../src/engine/deploy';
import { graphFromModel, modelFromGraph, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { inspectModel } from '../../src/engine/inspect';
import { saveLayersModelToDir } from '../../src/engine/io';
import { loadModelSource } from '../../src/engine/model';
import { keptChannelsFromMasks, pruneGraph } from '../../src/engine/transform/prune';
import { makeTempDir } from '../support/cli';
import { FAMILIES, type Family } from '../support/families';
import { referenceMacsByLayer } from '../support/families-macs';
import { allLatentsBelowThreshold, expectRelativelyClose, loadWithStockTfjs, unfoldedBatchNorms } from '../support/families-checks';
import { predictGraph, predictModel, randomlyMasked, seededTensor } from '../support/tensors';

describe('families: Keras architecture families inspect, prune and deploy exactly', function () {
  this.timeout(300_000);
  let work: string;

  before(async () => {
    await tf.setBackend('cpu');
    work = makeTempDir('pas-families-');
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  FAMILIES.forEach((family: Family, familyIndex: number) => {
    describe(`${family.name}: ${family.description}`, () => {
      const seed = 1000 + 17 * familyIndex;
      let model: tf.LayersModel;
      let graph: ModelGraph;
      let inputShape: number[];
      let input: tf.Tensor;

      before(() => {
        model = family.build(seed);
        graph = graphFromModel(model);
        inputShape = model.inputs[0].shape.slice(1) as number[];
        input = seededTensor([3, ...inputShape], seed + 1);
      });

      after(() => {
        model?.dispose();
        input?.dispose();
      });

      it('loads from its model.json, inspects, and every layer has the MACs of the reference count', async () => {
        const dir = path.join(work, family.name);
        await saveLayersModelToDir(model, dir, { overwrite: true });
        const loaded = await loadModelSource(path.join(dir, 'model.json'));
        try {
          // Saved and loaded through the engine's IO: the same function as the model it came from.
          expectRelativelyClose(predictModel(loaded.model, input), predictModel(model, input), `${family.name}: reloaded vs built`);
          const outputShape = model.outputs[0].shape;
          // Inspect refuses no Layers model, classifier or not.
          const report = inspectModel(loaded.model, loaded.source);
          const rows = report.trainingForm.layers;
          const engineMacs = new Map(rows.map((r) => [r.name, r.macs]));
          const { byLayer, uncounted } = referenceMacsByLayer(model);
          const mismatches: string[] = [];
          for (const [layer, expected] of byLayer) {
            if (expected === 0) continue;
            const actual = engineMacs.get(layer);
            if (actual !== expected) mismatches.push(`${layer}: engine ${actual ?? 'no row'}, reference ${expected}`);
          }
          for (const row of rows) {
            if (row.macs > 0 && !byLayer.has(row.name) && !uncounted.includes(row.name)) mismatches.push(`${row.name} (${row.type}): engine counts ${row.macs} MACs, the reference counts none`);
          }
          assert.deepStrictEqual(mismatches, [], `${family.name}: per-layer MACs differ:\n${mismatches.join('\n')}`);
          assert.ok(report.prunableGroups.length > 0, `${family.name}: inspect finds prunable groups`);
          assert.deepStrictEqual(report.inputShape, inputShape);
          if (family.classifier) assert.strictEqual(report.numClasses, outputShape[outputShape.length - 1]);
        } finally {
          loaded.model.dispose();
        }
      });

      it('pruned == masked for a random mask and for all latents below the threshold', async () => {
        const cases: Array<[string, ModelGraph]> = [
          ['random mask', randomlyMasked(graph, seed + 2, 0.5).graph],
          ['all latents < 0.5', allLatentsBelowThreshold(graph, seed + 4)],
        ];
        for (const [label, masked] of cases) {
          const kept = keptChannelsFromMasks(masked);
          assert.ok(kept.size > 0, `${family.name} ${label}: no prunable group`);
          const pruned = pruneGraph(masked, kept);
          const expected = await predictGraph(masked, input);
          const actual = await predictGraph(pruned, input);
          expectRelativelyClose(actual, expected, `${family.name} ${label}: pruned vs masked`);
        }
      });

      it('deployed == training-time (unmasked and masked), loads in stock tfjs, no BN left after a conv', async () => {
        const masked = randomlyMasked(graph, seed + 5, 0.5).graph;
        for (const [label, training] of [['unmasked', graph], ['masked', masked]] as Array<[string, ModelGraph]>) {
          const reference = await modelFromGraph(training);
          const deployment = await deployGraph(training, reference, inputShape);
          try {
            const expected = predictModel(reference, input);
            expectRelativelyClose(predictModel(deployment.deployed, input), expected, `${family.name} ${label}: deployed vs training-time`);
            assert.deepStrictEqual(unfoldedBatchNorms(deployment.deployedGraph), [], `${family.name} ${label}: BN layers left after a conv`);
            const batchNorms = deployment.deployedGraph.nodes.filter((n) => n.className === 'BatchNormalization').map((n) => n.id);
            if (family.keepsBatchNorm === undefined) assert.deepStrictEqual(batchNorms, [], `${family.name} ${label}: the deployed model has BatchNormalization layers`);
            assert.ok(deployment.deployedSummary.totalMacs <= deployment.trainingSummary.totalMacs, `${family.name} ${label}: deployment added MACs`);
            // The deployed model as a user gets it: saved by PaS, loaded by stock tfjs.
            const dir = path.join(work, `${family.name}-deployed-${label}`);
            await saveLayersModelToDir(deployment.deployed, dir, { overwrite: true });
            const stock = await loadWithStockTfjs(dir);
            try {
              expectRelativelyClose(predictModel(stock, input), expected, `${family.name} ${label}: deployed (stock tfjs load) vs training-time`);
              // Its per-layer MACs, too, are the reference count of the model stock tfjs built.
              const { byLayer } = referenceMacsByLayer(stock);
              const engineRows = new Map(deployment.deployedSummary.layers.map((r) => [r.name, r.macs]));
              for (const [layer, macs] of byLayer) if (macs > 0) assert.strictEqual(engineRows.get(layer), macs, `${family.name} ${label}: deployed layer ${layer} MACs`);
            } finally {
              stock.dispose();
            }
          } finally {
            reference.dispose();
            deployment.deployed.dispose();
          }
        }
      });
    });
  });
});
