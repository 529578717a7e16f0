/**
 * Physical pruning must compute exactly what the masked model computes, with widths equal to the
 * kept counts; and the differentiable MACs formula must equal the MACs counted on the deployed
 * pruned model, for any mask.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { analyzeGraph, prunableGroups } from '../../src/engine/graph/analysis';
import { summarizeGraph } from '../../src/engine/graph/counting';
import { MacsFormula } from '../../src/engine/budget/macsFormula';
import { graphFromModel, modelFromGraph, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { maskLayoutOf } from '../../src/engine/transform/masks';
import { keptChannelsFromMasks, pruneGraph } from '../../src/engine/transform/prune';
import { reparameterizeGraph } from '../../src/engine/transform/reparameterize';
import { buildPlainCnn, buildResidualCnn } from '../../src/engine/zoo/cnn';
import { buildRepVgg } from '../../src/engine/zoo/repvgg';
import { expectRelativeClose, groupWidths, maxAbs, predictGraph, predictModel, randomInputFor, randomizeBatchNorm, randomlyMasked, scaleDenseKernels } from '../support/tensors';

/** Relative to the output's scale, near the float32 rounding pruning really shows (about 1e-7 of it). */
const RELATIVE_TOLERANCE = 1e-5;

interface Case {
  label: string;
  build: () => tf.LayersModel;
}

const CASES: Case[] = [
  {
    label: 'RepVGG-A0 (identity branches, stride-2 padding)',
    build: () => buildRepVgg({ variant: 'A0', inputShape: [32, 32, 3], numClasses: 5, widthMultiplier: 0.25, blocksPerStage: [1, 2, 3, 2, 1], seed: 5 }),
  },
  { label: 'plain CNN (dense after global pooling)', build: () => buildPlainCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.5 }) },
  {
    label: 'residual CNN (coupled channels, depthwise, flatten -> dense -> dense)',
    build: () => buildResidualCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.5 }),
  },
];

function trainingGraph(c: Case, seed: number): ModelGraph {
  const model = c.build();
  const graph = graphFromModel(model);
  model.dispose();
  randomizeBatchNorm(graph, seed);
  scaleDenseKernels(graph, 20); // logits of several units, as a trained classifier gives
  return graph;
}

describe('engine: pruning is exact', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  CASES.forEach((c, caseIndex) => {
    it(`${c.label}: pruned == masked, widths == kept counts, coupled producers share one width`, async () => {
      const graph = trainingGraph(c, 100 + caseIndex);
      const { graph: masked, dropped } = randomlyMasked(graph, 200 + caseIndex);
      assert.ok(dropped > 0, 'the mask drops channels');
      const kept = keptChannelsFromMasks(masked);
      const analysis = analyzeGraph(masked);
      const groups = prunableGroups(analysis);
      assert.deepStrictEqual([...kept.keys()].sort(), groups.map((g) => g.id).sort(), 'one kept list per prunable group');

      const pruned = pruneGraph(masked, kept);
      const prunedModel = await modelFromGraph(pruned);
      const x = randomInputFor(graph, 3, 300 + caseIndex);
      try {
        const expected = await predictGraph(masked, x);
        const actual = predictModel(prunedModel, x);
        assert.ok(maxAbs(expected) > 0.5, `the masked output has a realistic scale (${maxAbs(expected)})`);
        const relative = expectRelativeClose(actual, expected, RELATIVE_TOLERANCE, c.label);
        if (process.env.PAS_PRINT_ERRORS) console.log(`${c.label}: relative error ${relative.toExponential(2)}, scale ${maxAbs(expected).toFixed(2)}`);
      } finally {
        x.dispose();
      }

      // The widths of the built tfjs layers, not only of the graph bookkeeping.
      const byId = new Map(pruned.nodes.map((n) => [n.id, n]));
      for (const group of groups) {
        const keep = kept.get(group.id)!;
        assert.ok(group.producerIds.length >= 1);
        for (const producerId of group.producerIds) {
          const node = byId.get(producerId);
          // A RepVGG block's producer is its Add: the width shows on the Add's output.
          assert.ok(node, `producer ${producerId} is still in the pruned graph`);
          const layer = prunedModel.getLayer(node.layerName);
          const shape = layer.getOutputAt(0) as tf.SymbolicTensor;
          assert.strictEqual(shape.shape[shape.shape.length - 1], keep.length, `${producerId}: width == kept count of group ${group.name}`);
          if (node.className === 'Conv2D' || node.className === 'Dense') {
            const kernel = layer.getWeights()[0];
            assert.strictEqual(kernel.shape[kernel.shape.length - 1], keep.length, `${producerId}: kernel output axis`);
          }
        }
      }
      prunedModel.dispose();
    });
  });

  it('residual CNN: both producers of a coupled group are pruned to the same channels', async () => {
    const graph = trainingGraph(CASES[2], 110);
    const { graph: masked } = randomlyMasked(graph, 210, 0.5);
    const kept = keptChannelsFromMasks(masked);
    const analysis = analyzeGraph(masked);
    const groups = prunableGroups(analysis).filter((g) => g.producerIds.length === 2);
    assert.strictEqual(groups.length, 2, 'two residual stages, each one coupled group');
    const pruned = pruneGraph(masked, kept);
    for (const group of groups) {
      const keep = kept.get(group.id)!;
      assert.ok(keep.length < group.width, `group ${group.name} drops a channel (else this test shows nothing)`);
      for (const producer of group.producerIds) {
        const node = masked.nodes.find((n) => n.id === producer)!;
        const before = masked.weights.get(node.layerName)!.kernel;
        const after = pruned.weights.get(node.layerName)!.kernel;
        assert.strictEqual(after.shape[3], keep.length);
        // Tap (0, 0), first kept input channel: pruned output o must be original output keep[o].
        const inKeep = kept.get(analysis.spaceOf.get(node.inputs[0])!) ?? [0];
        const outBefore = before.shape[3];
        for (let o = 0; o < keep.length; o++) {
          assert.strictEqual(after.values[o], before.values[inKeep[0] * outBefore + keep[o]], `${node.layerName}: pruned output ${o} is original channel ${keep[o]}`);
        }
      }
    }
  });
});

describe('engine: kept channels from masks', () => {
  it('a group whose mask drops every channel keeps only its strongest latent', () => {
    const graph = trainingGraph(CASES[1], 120);
    const { graph: masked } = randomlyMasked(graph, 220);
    // Group ids as the masked graph's own analysis names them (what keptChannelsFromMasks uses).
    const layout = maskLayoutOf(masked);
    const [groupId, layerName] = [...layout.layerOfGroup][0];
    const latent = masked.weights.get(layerName)!.latent.values;
    const strongest = Math.floor(latent.length / 2);
    for (let c = 0; c < latent.length; c++) latent[c] = c === strongest ? 0.45 : 0.1 + 0.001 * c;
    const kept = keptChannelsFromMasks(masked);
    assert.deepStrictEqual(kept.get(groupId), [strongest]);
    // The other groups keep exactly their latents above 0.5.
    for (const [otherGroup, otherLayer] of layout.layerOfGroup) {
      if (otherGroup === groupId) continue;
      const values = masked.weights.get(otherLayer)!.latent.values;
      assert.deepStrictEqual(kept.get(otherGroup), [...values.keys()].filter((c) => values[c] > 0.5));
    }
  });
});

describe('engine: the differentiable MACs equal the counted MACs for any mask', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  CASES.forEach((c, caseIndex) => {
    it(`${c.label}: MacsFormula(kept counts) == summarizeGraph(deployed pruned) for random masks, with numbers and with tf scalars`, () => {
      const graph = trainingGraph(c, 400 + caseIndex);
      const fullMacs = summarizeGraph(reparameterizeGraph(graph)).totalMacs;
      const seen = new Set<number>();
      for (let trial = 0; trial < 4; trial++) {
        const { graph: masked } = randomlyMasked(graph, 500 + 10 * caseIndex + trial, [0.2, 0.4, 0.6, 0.8][trial]);
        const kept = keptChannelsFromMasks(masked);
        const counts = new Map([...kept].map(([id, keep]) => [id, keep.length]));
        const widths = groupWidths(masked);
        const formula = MacsFormula.fromGraph(masked);

        const counted = summarizeGraph(reparameterizeGraph(pruneGraph(masked, kept))).totalMacs;
        const evaluated = formula.evaluate(counts, widths);
        assert.strictEqual(evaluated, counted, `trial ${trial}: formula ${evaluated} vs counted ${counted}`);
        assert.ok(counted < fullMacs, `trial ${trial}: pruning reduced the MACs`);
        seen.add(counted);

        const asTensor = tf.tidy(() =>
          formula.evaluateWith<tf.Scalar>(
            (group) => tf.scalar(counts.get(group) ?? widths.get(group)!),
            (v) => tf.scalar(v),
            (a, b) => tf.mul(a, b),
            (a, b) => tf.add(a, b),
            (a, k) => tf.mul(a, k),
          ),
        );
        const value = asTensor.dataSync()[0];
        asTensor.dispose();
        assert.ok(Math.abs(value - counted) <= 1e-6 * counted, `trial ${trial}: tf formula ${value} vs counted ${counted}`);
      }
      assert.ok(seen.size >= 3, 'the random masks gave different MACs');
      // With nothing pruned the formula gives the unpruned deployed MACs.
      const { graph: full } = randomlyMasked(graph, 1, 0);
      assert.strictEqual(MacsFormula.fromGraph(full).evaluate(new Map(), groupWidths(full)), fullMacs);
    });
  });
});
