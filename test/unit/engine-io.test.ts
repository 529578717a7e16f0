/**
 * Save/load of masked models (DBC layers included): our own writer and tfjs's own `model.save`
 * output must load back to the same function and the same channel groups.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { analyzeGraph, prunableGroups } from '../../src/engine/graph/analysis';
import { graphFromModel, modelFromGraph, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { loadLayersModelFromFile, saveLayersModelToDir } from '../../src/engine/io';
import { DBC_CLASS_NAME } from '../../src/engine/transform/masks';
import { buildResidualCnn } from '../../src/engine/zoo/cnn';
import { maxAbs, maxAbsDiff, predictModel, randomInputFor, randomizeBatchNorm, randomlyMasked } from '../support/tensors';

/** Producer layer names of each prunable group, as sorted lists, sorted. */
function producerSets(graph: ModelGraph): string[][] {
  const analysis = analyzeGraph(graph);
  const layerOf = new Map(graph.nodes.map((n) => [n.id, n.layerName]));
  return prunableGroups(analysis)
    .map((g) => g.producerIds.map((id) => layerOf.get(id)!).sort())
    .sort((a, b) => a.join().localeCompare(b.join()));
}

// The residual CNN by construction: two coupled stages (stem + res1 second conv, widen + res2
// second conv), the first conv of each residual block, and the hidden dense layer. The depthwise
// conv stays in the widen group; the classifier's output is the model output.
const RESIDUAL_PRUNABLE_PRODUCERS = [['fc1'], ['res1_a_conv'], ['res1_b_conv', 'stem_conv'], ['res2_a_conv'], ['res2_b_conv', 'widen_conv']];

describe('engine: save/load of masked models', () => {
  let scratch: string;
  let masked: ModelGraph;

  before(async () => {
    await tf.setBackend('cpu');
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-engine-io-'));
    const model = buildResidualCnn({ inputShape: [12, 12, 3], numClasses: 4, widthMultiplier: 0.5 });
    const graph = graphFromModel(model);
    model.dispose();
    randomizeBatchNorm(graph, 31);
    masked = randomlyMasked(graph, 32).graph;
  });

  after(() => {
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('saveLayersModelToDir then loadLayersModelFromFile: identical outputs, masks and DBC layers kept', async () => {
    const model = await modelFromGraph(masked);
    const saved = await saveLayersModelToDir(model, path.join(scratch, 'ours'));
    const loaded = await loadLayersModelFromFile(saved.modelJsonPath);
    const x = randomInputFor(masked, 2, 33);
    try {
      const expected = predictModel(model, x);
      assert.ok(maxAbs(expected) > 1e-3);
      assert.strictEqual(maxAbsDiff(predictModel(loaded, x), expected), 0);
      const dbcLayers = loaded.layers.filter((l) => l.getClassName() === DBC_CLASS_NAME);
      assert.strictEqual(dbcLayers.length, RESIDUAL_PRUNABLE_PRODUCERS.length, 'one DBC layer per prunable group');
      const loadedGraph = graphFromModel(loaded);
      for (const layer of dbcLayers) {
        assert.deepStrictEqual(loadedGraph.weights.get(layer.name)!.latent.values, masked.weights.get(layer.name)!.latent.values, `${layer.name} latents`);
      }
      assert.deepStrictEqual(producerSets(loadedGraph), RESIDUAL_PRUNABLE_PRODUCERS);
    } finally {
      x.dispose();
      model.dispose();
      loaded.dispose();
    }
  });

  it("a model.json written by tfjs's own model.save loads, computes the same, and has the expected prunable groups", async () => {
    const model = await modelFromGraph(masked);
    const dir = path.join(scratch, 'tfjs-save');
    fs.mkdirSync(dir);
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weightData = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
        fs.writeFileSync(path.join(dir, 'group1-shard1of1.bin'), Buffer.from(weightData));
        const modelJson = {
          modelTopology: artifacts.modelTopology,
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy,
          weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts.weightSpecs }],
        };
        fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
    const loaded = await loadLayersModelFromFile(path.join(dir, 'model.json'));
    const x = randomInputFor(masked, 2, 34);
    try {
      assert.strictEqual(maxAbsDiff(predictModel(loaded, x), predictModel(model, x)), 0);
      assert.deepStrictEqual(producerSets(graphFromModel(loaded)), RESIDUAL_PRUNABLE_PRODUCERS);
    } finally {
      x.dispose();
      model.dispose();
      loaded.dispose();
    }
  });
});
