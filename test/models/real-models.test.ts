/**
 * Real Keras models converted to TF.js, as an npm package ships them (nsfwjs 4.4.0: MobileNetV2 at
 * 224x224 and InceptionV3 at 299x299, uint8-quantized weights), fetched into test/fixtures/real by
 * `bash scripts/fetch-real-models.sh`. Each must load through the engine, inspect with per-layer
 * MACs equal to the reference count, prune (pruned == masked) and deploy (deployed == masked,
 * within 1e-5 of the output's scale) for random masks; the deployed model must load in stock tfjs
 * and keep no BatchNormalization. MobileNetV2 also runs a short search through the CLI.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { DoneEvent } from '../../src/shared/workerProtocol';
import { initBackend } from '../../src/engine/backends';
import { deployGraph } from '../../src/engine/deploy';
import { graphFromModel, modelFromGraph, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { inspectModel } from '../../src/engine/inspect';
import { saveLayersModelToDir } from '../../src/engine/io';
import { loadModelSource } from '../../src/engine/model';
import { keptChannelsFromMasks, pruneGraph } from '../../src/engine/transform/prune';
import { makeTempDir, parseEvents, REPO_ROOT, runCli } from '../support/cli';
import { writeStripeImageFolder } from '../support/families-data';
import { referenceMacsByLayer } from '../support/families-macs';
import { expectRelativelyClose, loadWithStockTfjs } from '../support/families-checks';
import { predictGraph, predictModel, randomlyMasked, seededTensor } from '../support/tensors';

const REAL_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'real');

interface RealModel {
  name: string;
  inputShape: number[];
  classes: number;
  /** Expected layer counts, so a different download is noticed. */
  convs: number;
  concatenates: number;
}

const REAL_MODELS: RealModel[] = [
  { name: 'mobilenet_v2', inputShape: [224, 224, 3], classes: 5, convs: 35, concatenates: 0 },
  { name: 'inception_v3', inputShape: [299, 299, 3], classes: 5, convs: 94, concatenates: 15 },
];

describe('real Keras models from npm (nsfwjs 4.4.0): inspect, prune, deploy', function () {
  this.timeout(1_200_000);
  let work: string;

  before(async () => {
    for (const real of REAL_MODELS) {
      assert.ok(fs.existsSync(path.join(REAL_DIR, real.name, 'model.json')), `test/fixtures/real/${real.name} is missing: run 'bash scripts/fetch-real-models.sh' first`);
    }
    await initBackend('wasm');
    work = makeTempDir('pas-real-');
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  REAL_MODELS.forEach((real, index) => {
    describe(real.name, () => {
      let model: tf.LayersModel;
      let graph: ModelGraph;
      let input: tf.Tensor;
      const file = path.join(REAL_DIR, real.name, 'model.json');

      before(async () => {
        model = (await loadModelSource(file)).model;
        graph = graphFromModel(model);
        input = seededTensor([1, ...real.inputShape], 77 + index);
      });

      after(() => {
        model?.dispose();
        input?.dispose();
      });

      it('loads and inspects; every layer has the MACs of the reference count', () => {
        const classes = new Map<string, number>();
        for (const layer of model.layers) classes.set(layer.getClassName(), (classes.get(layer.getClassName()) ?? 0) + 1);
        assert.strictEqual(classes.get('Conv2D'), real.convs);
        assert.strictEqual(classes.get('Concatenate') ?? 0, real.concatenates);
        const report = inspectModel(model, file);
        assert.deepStrictEqual(report.inputShape, real.inputShape);
        assert.strictEqual(report.numClasses, real.classes);
        assert.ok(report.prunableGroups.length > 0, 'prunable groups found');
        const engine = new Map(report.trainingForm.layers.map((r) => [r.name, r.macs]));
        const { byLayer, uncounted } = referenceMacsByLayer(model);
        assert.deepStrictEqual(uncounted, []);
        const mismatches = [...byLayer].filter(([name, macs]) => macs > 0 && engine.get(name) !== macs).map(([name, macs]) => `${name}: engine ${engine.get(name)}, reference ${macs}`);
        assert.deepStrictEqual(mismatches, []);
        const total = [...byLayer.values()].reduce((a, b) => a + b, 0);
        assert.strictEqual(report.trainingForm.totalMacs, total);
      });

      it('pruned == masked == deployed for a random mask; the deployed model loads in stock tfjs without BN', async () => {
        const { graph: masked, dropped } = randomlyMasked(graph, 900 + index, 0.4);
        assert.ok(dropped > 0);
        const expected = await predictGraph(masked, input);
        const pruned = pruneGraph(masked, keptChannelsFromMasks(masked));
        expectRelativelyClose(await predictGraph(pruned, input), expected, `${real.name}: pruned vs masked`);
        const reference = await modelFromGraph(masked);
        const deployment = await deployGraph(masked, reference, real.inputShape);
        try {
          expectRelativelyClose(predictModel(deployment.deployed, input), expected, `${real.name}: deployed vs masked`);
          assert.deepStrictEqual(deployment.deployedGraph.nodes.filter((n) => n.className === 'BatchNormalization').map((n) => n.id), []);
          assert.ok(deployment.deployedSummary.totalMacs < deployment.trainingSummary.totalMacs);
          const dir = path.join(work, `${real.name}-deployed`);
          await saveLayersModelToDir(deployment.deployed, dir, { overwrite: true });
          const stock = await loadWithStockTfjs(dir);
          try {
            expectRelativelyClose(predictModel(stock, input), expected, `${real.name}: deployed (stock tfjs load) vs masked`);
            const { byLayer } = referenceMacsByLayer(stock);
            assert.strictEqual(deployment.deployedSummary.totalMacs, [...byLayer.values()].reduce((a, b) => a + b, 0), 'deployed MACs == reference count of the deployed model');
          } finally {
            stock.dispose();
          }
        } finally {
          reference.dispose();
          deployment.deployed.dispose();
        }
      });
    });
  });

  it('mobilenet_v2: a short search (a few images) reaches the MACs target', () => {
    const out = path.join(work, 'mobilenet-search');
    // nsfwjs classifies 5 classes: a 5-class image folder (the bundled sample has 10).
    const data = writeStripeImageFolder(path.join(work, 'stripes'), { classes: 5, perClass: 6, size: 32, seed: 8 });
    const result = runCli(
      ['search', path.join(REAL_DIR, 'mobilenet_v2', 'model.json'), '--data', `folder:${data}`, '--max-train', '20', '--max-test', '10', '--batch-size', '4', '--pretrain-epochs', '0', '--search-epochs', '1', '--finetune-epochs', '1', '--target-macs', '0.5', '--backend', 'wasm', '--seed', '3', '--out', out, '--json'],
      { timeoutMs: 1_000_000 },
    );
    assert.strictEqual(result.status, 0, result.stderr.slice(-3000));
    const done = parseEvents(result.stdout).find((e) => e.type === 'done') as DoneEvent;
    const ratio = done.report!.macsAfter / done.report!.targetMacs;
    assert.ok(Math.abs(ratio - 1) <= 0.03, `MACs after ${done.report!.macsAfter} vs target ${done.report!.targetMacs} (ratio ${ratio.toFixed(4)})`);
    assert.ok(done.report!.reparamMaxAbsDiff <= 1e-4);
  });
  it('inception_v3: a short search (a few images) reaches the MACs target with its 94 BNs (axis 3, scale: false) prunable', () => {
    const out = path.join(work, 'inception-search');
    const data = writeStripeImageFolder(path.join(work, 'stripes-inception'), { classes: 5, perClass: 6, size: 64, seed: 9 });
    const result = runCli(
      ['search', path.join(REAL_DIR, 'inception_v3', 'model.json'), '--data', `folder:${data}`, '--max-train', '12', '--max-test', '4', '--batch-size', '4', '--pretrain-epochs', '0', '--search-epochs', '1', '--finetune-epochs', '0', '--target-macs', '0.5', '--backend', 'wasm', '--seed', '3', '--out', out, '--json'],
      { timeoutMs: 1_000_000 },
    );
    assert.strictEqual(result.status, 0, result.stderr.slice(-3000));
    const events = parseEvents(result.stdout);
    const model = events.find((e) => e.type === 'model') as { groups: unknown[] } | undefined;
    assert.ok(model && model.groups.length > 90, `prunable groups: ${model?.groups.length}`);
    const done = events.find((e) => e.type === 'done') as DoneEvent;
    const ratio = done.report!.macsAfter / done.report!.targetMacs;
    assert.ok(Math.abs(ratio - 1) <= 0.03, `MACs after ${done.report!.macsAfter} vs target ${done.report!.targetMacs} (ratio ${ratio.toFixed(4)})`);
    assert.ok(done.report!.reparamMaxAbsDiff <= 1e-4);
  });
});
