/**
 * Structural reparameterization must compute exactly what the training-time model computes
 * (up to float32 rounding), and the deployed RepVGG must be the plain chain the paper describes.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { graphFromModel, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { summarizeGraph } from '../../src/engine/graph/counting';
import { reparameterizeGraph } from '../../src/engine/transform/reparameterize';
import { keptChannelsFromMasks, pruneGraph } from '../../src/engine/transform/prune';
import { buildRepVgg, type RepVggVariant } from '../../src/engine/zoo/repvgg';
import { buildPlainCnn, buildResidualCnn } from '../../src/engine/zoo/cnn';
import { classCounts, expectRelativeClose, maxAbs, predictGraph, randomInputFor, randomizeBatchNorm, randomlyMasked, scaleDenseKernels } from '../support/tensors';

/**
 * Relative to the output's scale. Measured float32 rounding of these comparisons: 7e-8 to 2e-6 of
 * the scale; dropping the BN epsilon (1e-3 against variances of 0.5-1.5) from the fold moves the
 * outputs by 3e-4 to 7e-3 of it, and all nine comparisons below then fail.
 */
const RELATIVE_TOLERANCE = 1e-5;

/** Logits of several units, as a trained classifier gives (the builders' init gives 0.03-0.4). */
const LOGIT_SCALE = 20;

function graphOf(model: tf.LayersModel, bnSeed: number): ModelGraph {
  const graph = graphFromModel(model);
  model.dispose();
  assert.ok(randomizeBatchNorm(graph, bnSeed) > 0, 'the model has BatchNormalization layers to fold');
  scaleDenseKernels(graph, LOGIT_SCALE);
  return graph;
}

/** Deployed vs training-time outputs on the same random batch; returns the training output. */
async function assertSameOutputs(training: ModelGraph, deployed: ModelGraph, seed: number, label: string): Promise<void> {
  const x = randomInputFor(training, 3, seed);
  try {
    const expected = await predictGraph(training, x);
    const actual = await predictGraph(deployed, x);
    // Logits of a realistic size: an absolute bound on tiny outputs would hide a wrong fold.
    assert.ok(maxAbs(expected) > 0.5, `${label}: the training-time output is small (${maxAbs(expected)})`);
    const relative = expectRelativeClose(actual, expected, RELATIVE_TOLERANCE, label);
    if (process.env.PAS_PRINT_ERRORS) console.log(`${label}: relative error ${relative.toExponential(2)}, scale ${maxAbs(expected).toFixed(2)}`);
  } finally {
    x.dispose();
  }
}

const REPVGG_CASES: Array<{ variant: RepVggVariant; inputShape: [number, number, number]; widthMultiplier: number }> = [
  { variant: 'A0', inputShape: [32, 32, 3], widthMultiplier: 0.125 },
  { variant: 'A1', inputShape: [28, 28, 1], widthMultiplier: 0.125 },
  { variant: 'A2', inputShape: [32, 32, 3], widthMultiplier: 0.125 },
  { variant: 'B0', inputShape: [28, 28, 1], widthMultiplier: 0.125 },
  { variant: 'B1', inputShape: [32, 32, 3], widthMultiplier: 0.0625 },
];

describe('engine: reparameterization is exact', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  for (const { variant, inputShape, widthMultiplier } of REPVGG_CASES) {
    it(`RepVGG-${variant} (${inputShape.join('x')}, width x${widthMultiplier}): deployed == training-time, a plain chain of one conv per block`, async () => {
      const model = buildRepVgg({ variant, inputShape, numClasses: 5, widthMultiplier, seed: 7 });
      const blockCount = model.layers.filter((l) => l.getClassName() === 'Add').length;
      const graph = graphOf(model, 11);
      const deployed = reparameterizeGraph(graph);

      const counts = classCounts(deployed);
      assert.strictEqual(counts.get('Add') ?? 0, 0, 'no Add left');
      assert.strictEqual(counts.get('BatchNormalization') ?? 0, 0, 'no BatchNormalization left');
      assert.strictEqual(counts.get('DepthwiseBinaryConv') ?? 0, 0, 'no DBC layer left');
      const expectedBlocks = { A0: 22, A1: 22, A2: 22, B0: 28, B1: 28 }[variant];
      assert.strictEqual(blockCount, expectedBlocks, 'the builder made the paper\'s block count');
      assert.strictEqual(counts.get('Conv2D'), expectedBlocks, 'one 3x3 conv per block');
      for (const node of deployed.nodes.filter((n) => n.className === 'Conv2D')) {
        assert.deepStrictEqual(node.config.kernel_size, [3, 3], `${node.id} is a 3x3 conv`);
      }
      await assertSameOutputs(graph, deployed, 21, `RepVGG-${variant}`);
    });
  }

  it('plain CNN: BN folded, outputs unchanged', async () => {
    const graph = graphOf(buildPlainCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.5 }), 12);
    const deployed = reparameterizeGraph(graph);
    assert.strictEqual(classCounts(deployed).get('BatchNormalization') ?? 0, 0);
    await assertSameOutputs(graph, deployed, 22, 'plain CNN');
  });

  it('residual CNN (identity shortcuts, depthwise conv, pooling, flatten head): outputs unchanged', async () => {
    const graph = graphOf(buildResidualCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.5 }), 13);
    const deployed = reparameterizeGraph(graph);
    await assertSameOutputs(graph, deployed, 23, 'residual CNN');
  });

  it('a masked RepVGG reparameterizes exactly (masks folded), and so does its pruned form', async () => {
    const graph = graphOf(
      buildRepVgg({ variant: 'A0', inputShape: [32, 32, 3], numClasses: 5, widthMultiplier: 0.25, blocksPerStage: [1, 2, 3, 2, 1], seed: 3 }),
      14,
    );
    const { graph: masked, dropped } = randomlyMasked(graph, 99);
    assert.ok(dropped > 0, 'some channels are masked');
    const deployedMasked = reparameterizeGraph(masked);
    assert.strictEqual(classCounts(deployedMasked).get('DepthwiseBinaryConv') ?? 0, 0, 'masks folded');
    await assertSameOutputs(masked, deployedMasked, 24, 'masked RepVGG, reparameterized');

    const pruned = pruneGraph(masked, keptChannelsFromMasks(masked));
    const deployedPruned = reparameterizeGraph(pruned);
    const counts = classCounts(deployedPruned);
    assert.strictEqual(counts.get('Add') ?? 0, 0);
    assert.strictEqual(counts.get('BatchNormalization') ?? 0, 0);
    assert.strictEqual(counts.get('DepthwiseBinaryConv') ?? 0, 0);
    assert.strictEqual(counts.get('Conv2D'), 9, 'one conv per block after pruning too');
    await assertSameOutputs(masked, deployedPruned, 25, 'masked RepVGG vs pruned + reparameterized');
  });

  it('a masked residual CNN pruned and reparameterized equals the masked model', async () => {
    const graph = graphOf(buildResidualCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.5 }), 15);
    const { graph: masked, dropped } = randomlyMasked(graph, 98);
    assert.ok(dropped > 0, 'some channels are masked');
    const deployed = reparameterizeGraph(pruneGraph(masked, keptChannelsFromMasks(masked)));
    await assertSameOutputs(masked, deployed, 26, 'masked residual CNN vs pruned + reparameterized');
  });
});

describe('engine: deployed RepVGG sizes match the RepVGG paper (224x224x3, 1000 classes)', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  // Table 2 of the RepVGG paper (Ding et al., CVPR 2021): params (M) and multiply-adds (G, rounded).
  const PAPER = [
    { variant: 'A0' as const, params: 8.30e6, macsG: 1.4 },
    { variant: 'B1' as const, params: 51.82e6, macsG: 11.8 },
  ];
  for (const { variant, params, macsG } of PAPER) {
    it(`RepVGG-${variant}: ${params / 1e6}M params, ${macsG}G multiply-adds`, () => {
      const model = buildRepVgg({ variant, inputShape: [224, 224, 3], numClasses: 1000 });
      const graph = graphFromModel(model);
      model.dispose();
      const summary = summarizeGraph(reparameterizeGraph(graph));
      const relative = Math.abs(summary.totalParams - params) / params;
      assert.ok(relative <= 0.01, `params ${summary.totalParams} differ from ${params} by ${(relative * 100).toFixed(2)}%`);
      assert.strictEqual(Math.round(summary.totalMacs / 1e8) / 10, macsG, `MACs ${summary.totalMacs}`);
    });
  }
});
