/**
 * Checks shared by the family and real-model tests: relative output comparison, masks whose
 * every latent is below the threshold, loading a saved model with stock tfjs only, and the BNs a
 * deployment must have folded. Not a test file.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/engine/data/random';
import type { ModelGraph } from '../../src/engine/graph/modelGraph';
import { insertMasks } from '../../src/engine/transform/masks';
import { maxAbs, maxAbsDiff } from './tensors';

/** Relative to the largest output magnitude of the reference model on the same input. */
export const RELATIVE_TOLERANCE = 1e-5;

/** Classes whose BN, when it directly follows one of them, a deployment must fold away. */
const FOLDS_FOLLOWING_BN = new Set(['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Conv2DTranspose', 'Dense']);

/** Asserts max |actual - expected| <= 1e-5 * max |expected| and returns that relative error. */
export function expectRelativelyClose(actual: Float32Array, expected: Float32Array, label: string, tolerance = RELATIVE_TOLERANCE): number {
  assert.strictEqual(actual.length, expected.length, `${label}: output sizes differ (${actual.length} vs ${expected.length})`);
  const scale = maxAbs(expected);
  assert.ok(scale > 1e-3, `${label}: the reference output is (nearly) zero (max ${scale}); the comparison would show nothing`);
  const relative = maxAbsDiff(actual, expected) / scale;
  assert.ok(relative <= tolerance, `${label}: max |diff| / max |output| = ${relative.toExponential(3)} > ${tolerance} (output scale ${scale.toPrecision(4)})`);
  return relative;
}

/** Masks whose every latent lies below the 0.5 threshold: each group keeps only its strongest channel. */
export function allLatentsBelowThreshold(graph: ModelGraph, seed: number): ModelGraph {
  const { graph: masked, layout } = insertMasks(graph);
  const random = mulberry32(seed);
  for (const layerName of layout.layerOfGroup.values()) {
    const latent = masked.weights.get(layerName)!.latent.values;
    for (let c = 0; c < latent.length; c++) latent[c] = 0.05 + 0.4 * random();
  }
  return masked;
}

/** Loads a saved model folder with stock tfjs only (not the PaS loader): model.json + its shards from memory. */
export async function loadWithStockTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = json.weightsManifest.flatMap((group: any) => group.weights);
  const shards = json.weightsManifest.flatMap((group: any) => group.paths.map((p: string) => fs.readFileSync(path.join(dir, p))));
  const joined = Buffer.concat(shards);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

/**
 * BNs of a (deployed) graph that directly follow a linear conv or dense layer: a deployment must
 * have folded them. (A conv that took over the ReLU after it is no longer linear: a BN after that
 * ReLU, as in pre-activation DenseNet units, has nothing to fold into.)
 */
export function unfoldedBatchNorms(graph: ModelGraph): string[] {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const linearProducer = (node: ModelGraph['nodes'][number] | undefined) =>
    node !== undefined && FOLDS_FOLLOWING_BN.has(node.className) && String(node.config.activation ?? 'linear') === 'linear';
  return graph.nodes.filter((n) => n.className === 'BatchNormalization' && linearProducer(byId.get(n.inputs[0]))).map((n) => n.id);
}
