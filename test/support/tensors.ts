/**
 * Shared helpers of the engine tests: seeded random data, BN statistics that are not the
 * defaults (so a wrong fold shows), random masks, and tensor comparison. Not a test file.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { mulberry32, type Random } from '../../src/engine/data/random';
import { analyzeGraph } from '../../src/engine/graph/analysis';
import { modelFromGraph, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { insertMasks, type MaskLayout } from '../../src/engine/transform/masks';
// Registers the DepthwiseBinaryConv class with tfjs serialization (modelFromGraph needs it).
import '../../src/engine/layers/dbc';

export { mulberry32, type Random };

/** A uniform number in [lo, hi). */
export const uniform = (random: Random, lo: number, hi: number) => lo + (hi - lo) * random();

/** Seeded values uniform in [-1, 1): tests must not depend on tf's global seed. */
export function seededValues(count: number, seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from({ length: count }, () => uniform(random, -1, 1));
}

/** A seeded random tensor, values in [-1, 1). */
export function seededTensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(seededValues(tf.util.sizeFromShape(shape), seed), shape);
}

/** max |a - b| over all elements (Infinity when either has a NaN, or the sizes differ). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** max |x| over all elements. */
export function maxAbs(a: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]));
  return max;
}

/** Asserts max |actual - expected| <= tolerance, and that the outputs are not trivially zero. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, label: string): number {
  assert.strictEqual(actual.length, expected.length, `${label}: sizes differ (${actual.length} vs ${expected.length})`);
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= tolerance, `${label}: max abs diff ${diff} > ${tolerance}`);
  return diff;
}

/**
 * Asserts max |actual - expected| <= relativeTolerance * max |expected|: a bound relative to the
 * output's scale, set near the float32 rounding the compared computations really show, so that
 * a small systematic error (a dropped BN epsilon, a wrong bias) fails. Refuses an all-zero
 * expected output, which no tolerance could test. Returns the measured relative error.
 */
export function expectRelativeClose(actual: ArrayLike<number>, expected: ArrayLike<number>, relativeTolerance: number, label: string): number {
  assert.strictEqual(actual.length, expected.length, `${label}: sizes differ (${actual.length} vs ${expected.length})`);
  const scale = maxAbs(expected);
  assert.ok(scale > 0, `${label}: the expected output is all zero`);
  const relative = maxAbsDiff(actual, expected) / scale;
  assert.ok(relative <= relativeTolerance, `${label}: max abs diff is ${relative.toExponential(2)} of the output scale ${scale.toPrecision(3)} (> ${relativeTolerance})`);
  return relative;
}

/**
 * Multiplies the kernel of every Dense layer by `factor`, in place: the builders' small
 * initialization gives logits of 0.03-0.4, trained classifiers give logits of several units.
 */
export function scaleDenseKernels(graph: ModelGraph, factor: number): void {
  for (const node of graph.nodes) {
    if (node.className !== 'Dense') continue;
    const kernel = graph.weights.get(node.layerName)?.kernel;
    if (kernel) for (let i = 0; i < kernel.values.length; i++) kernel.values[i] *= factor;
  }
}

/**
 * Gives every BatchNormalization of the graph random, non-default parameters and statistics
 * (gamma U(0.2,0.6), beta U(-0.2,0.2), mean U(-0.3,0.3), variance U(0.5,1.5)), in place.
 */
export function randomizeBatchNorm(graph: ModelGraph, seed: number): number {
  const random = mulberry32(seed);
  let count = 0;
  const ranges: Record<string, [number, number]> = {
    gamma: [0.2, 0.6],
    beta: [-0.2, 0.2],
    moving_mean: [-0.3, 0.3],
    moving_variance: [0.5, 1.5],
  };
  const done = new Set<string>();
  for (const node of graph.nodes) {
    if (node.className !== 'BatchNormalization' || done.has(node.layerName)) continue;
    done.add(node.layerName);
    const record = graph.weights.get(node.layerName)!;
    for (const [key, [lo, hi]] of Object.entries(ranges)) {
      const w = record[key];
      if (!w) continue;
      for (let i = 0; i < w.values.length; i++) w.values[i] = uniform(random, lo, hi);
    }
    count++;
  }
  return count;
}

/**
 * Inserts masks and sets every latent to 0.9 (kept) or 0.2 (dropped), each channel dropped
 * with probability `dropProbability`; every group keeps at least one channel (a group with no
 * channel left has no pruned counterpart to compare with).
 */
export function randomlyMasked(graph: ModelGraph, seed: number, dropProbability = 0.4): { graph: ModelGraph; layout: MaskLayout; dropped: number } {
  const { graph: masked, layout } = insertMasks(graph);
  const random = mulberry32(seed);
  let dropped = 0;
  for (const layerName of layout.layerOfGroup.values()) {
    const latent = masked.weights.get(layerName)!.latent.values;
    for (let c = 0; c < latent.length; c++) latent[c] = random() < dropProbability ? 0.2 : 0.9;
    if (latent.every((v) => v < 0.5)) latent[Math.floor(random() * latent.length)] = 0.9;
    dropped += latent.filter((v) => v < 0.5).length;
  }
  return { graph: masked, layout, dropped };
}

/** Builds the graph as a tfjs model, predicts (inference mode) and frees the model. */
export async function predictGraph(graph: ModelGraph, input: tf.Tensor): Promise<Float32Array> {
  const model = await modelFromGraph(graph);
  try {
    return predictModel(model, input);
  } finally {
    model.dispose();
  }
}

/** Inference-mode output of a model as a plain array. */
export function predictModel(model: tf.LayersModel, input: tf.Tensor): Float32Array {
  const out = model.predict(input) as tf.Tensor;
  const values = Float32Array.from(out.dataSync());
  out.dispose();
  return values;
}

/** Input of shape [batch, ...inputShape] of the graph's (single) input, seeded. */
export function randomInputFor(graph: ModelGraph, batch: number, seed: number): tf.Tensor {
  const input = graph.nodes.find((n) => n.id === graph.inputIds[0])!;
  return seededTensor([batch, ...input.outputShape], seed);
}

/** Counts nodes per className. */
export function classCounts(graph: ModelGraph): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of graph.nodes) counts.set(node.className, (counts.get(node.className) ?? 0) + 1);
  return counts;
}

/** Full width of every group of the graph, by group id. */
export function groupWidths(graph: ModelGraph): Map<string, number> {
  return new Map(analyzeGraph(graph).groups.map((g) => [g.id, g.width]));
}
