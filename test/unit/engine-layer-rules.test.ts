/**
 * The layer-rules registry on the shapes real converted models have: concatenations, squeeze-
 * excitation, separable and transposed convs, every activation. For each: pruned == masked,
 * deployed == masked, and the MACs formula equals the MACs counted on the deployed pruned model.
 * The per-family MACs written by hand live in the families tests; here the properties.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { MacsFormula } from '../../src/engine/budget/macsFormula';
import { analyzeGraph, fixedGroups, prunableGroups } from '../../src/engine/graph/analysis';
import { summarizeGraph } from '../../src/engine/graph/counting';
import { graphFromModel, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { inspectGraph } from '../../src/engine/inspect';
import { keptChannelsFromMasks, pruneGraph } from '../../src/engine/transform/prune';
import { reparameterizeGraph } from '../../src/engine/transform/reparameterize';
import { insertMasks } from '../../src/engine/transform/masks';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { mulberry32 } from '../../src/engine/data/random';
import { maxAbs, maxAbsDiff, predictGraph, randomInputFor, randomizeBatchNorm, randomlyMasked } from '../support/tensors';

const L = tf.layers;
type Sym = tf.SymbolicTensor;
const conv = (x: Sym, filters: number, name: string, extra: Record<string, unknown> = {}) =>
  L.conv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, name, ...extra }).apply(x) as Sym;
const bn = (x: Sym, name: string) => L.batchNormalization({ name }).apply(x) as Sym;
const act = (x: Sym, activation: string, name: string) => L.activation({ activation: activation as any, name }).apply(x) as Sym;
const head = (x: Sym, classes = 3) => L.dense({ units: classes, name: 'classifier' }).apply(L.globalAveragePooling2d({ name: 'gap_head' }).apply(x)) as Sym;

function model(build: (input: Sym) => Sym, shape = [12, 12, 3]): ModelGraph {
  const input = tf.input({ shape, name: 'image' });
  const m = tf.model({ inputs: input, outputs: build(input) });
  const graph = graphFromModel(m);
  m.dispose();
  randomizeBatchNorm(graph, 7);
  return graph;
}

const FAMILIES: Array<{ label: string; graph: () => ModelGraph }> = [
  {
    label: 'DenseNet-style: conv outputs concatenated, a 1x1 conv reads the concatenation',
    graph: () =>
      model((x) => {
        const a = act(bn(conv(x, 6, 'stem'), 'stem_bn'), 'relu', 'stem_relu');
        const b = act(bn(conv(a, 4, 'grow1'), 'grow1_bn'), 'relu', 'grow1_relu');
        const c = L.concatenate({ name: 'cat1' }).apply([a, b]) as Sym;
        const d = act(bn(conv(c, 4, 'grow2'), 'grow2_bn'), 'relu6', 'grow2_relu');
        const e = L.concatenate({ name: 'cat2' }).apply([c, d]) as Sym;
        const t = L.conv2d({ filters: 5, kernelSize: 1, name: 'transition' }).apply(e) as Sym;
        return head(L.averagePooling2d({ poolSize: 2, name: 'pool' }).apply(t) as Sym);
      }),
  },
  {
    label: 'Inception-style: 1x7 / 7x1 and pooled branches concatenated, flattened into a dense',
    graph: () =>
      model((x) => {
        const s = act(bn(conv(x, 6, 'stem'), 'stem_bn'), 'relu', 'stem_relu');
        const b1 = L.conv2d({ filters: 3, kernelSize: 1, name: 'b1' }).apply(s) as Sym;
        const b2a = L.conv2d({ filters: 4, kernelSize: [1, 7], padding: 'same', name: 'b2_1x7' }).apply(s) as Sym;
        const b2 = act(bn(L.conv2d({ filters: 5, kernelSize: [7, 1], padding: 'same', name: 'b2_7x1' }).apply(b2a) as Sym, 'b2_bn'), 'relu', 'b2_relu');
        const b3 = L.conv2d({ filters: 2, kernelSize: 1, name: 'b3' }).apply(L.maxPooling2d({ poolSize: 3, strides: 1, padding: 'same', name: 'b3_pool' }).apply(s)) as Sym;
        const cat = L.concatenate({ name: 'mixed' }).apply([b1, b2, b3]) as Sym;
        const p = L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'reduce' }).apply(cat) as Sym;
        return L.dense({ units: 3, name: 'classifier' }).apply(L.flatten({ name: 'flat' }).apply(p)) as Sym;
      }),
  },
  {
    label: 'MBConv with squeeze-excitation (swish, depthwise, GAP -> Reshape -> conv -> conv(sigmoid) -> Multiply)',
    graph: () =>
      model((x) => {
        const s = act(bn(conv(x, 8, 'stem'), 'stem_bn'), 'swish', 'stem_swish');
        const e = act(bn(L.conv2d({ filters: 12, kernelSize: 1, useBias: false, name: 'expand' }).apply(s) as Sym, 'expand_bn'), 'swish', 'expand_swish');
        const dw = act(bn(L.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'dw' }).apply(e) as Sym, 'dw_bn'), 'swish', 'dw_swish');
        const sq = L.reshape({ targetShape: [1, 1, 12], name: 'se_reshape' }).apply(L.globalAveragePooling2d({ name: 'se_squeeze' }).apply(dw)) as Sym;
        const r = L.conv2d({ filters: 3, kernelSize: 1, activation: 'swish' as any, name: 'se_reduce' }).apply(sq) as Sym;
        const g = L.conv2d({ filters: 12, kernelSize: 1, activation: 'sigmoid', name: 'se_expand' }).apply(r) as Sym;
        const gated = L.multiply({ name: 'se_excite' }).apply([dw, g]) as Sym;
        const proj = bn(L.conv2d({ filters: 8, kernelSize: 1, useBias: false, name: 'project' }).apply(gated) as Sym, 'project_bn');
        const res = L.add({ name: 'residual' }).apply([s, proj]) as Sym;
        return head(res);
      }),
  },
  {
    label: 'Xception-style: SeparableConv2D (multiplier 2), PReLU, LeakyReLU, ELU, hard_sigmoid, tanh',
    graph: () =>
      model((x) => {
        const s = L.prelu({ name: 'stem_prelu' }).apply(bn(conv(x, 6, 'stem'), 'stem_bn')) as Sym;
        const a = L.leakyReLU({ alpha: 0.1, name: 'sep1_leaky' }).apply(bn(L.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', depthMultiplier: 2, name: 'sep1' }).apply(s) as Sym, 'sep1_bn')) as Sym;
        const b = L.elu({ name: 'sep2_elu' }).apply(L.separableConv2d({ filters: 7, kernelSize: 3, padding: 'same', name: 'sep2' }).apply(a)) as Sym;
        const c = act(L.conv2d({ filters: 5, kernelSize: 1, name: 'gate' }).apply(b) as Sym, 'hardSigmoid', 'gate_hs');
        const d = act(L.conv2d({ filters: 6, kernelSize: 3, dilationRate: 2, padding: 'same', name: 'dilated' }).apply(c) as Sym, 'tanh', 'dilated_tanh');
        return head(d);
      }),
  },
  {
    label: 'U-Net-style: Conv2DTranspose and UpSampling2D with a Concatenate skip, Cropping2D, GlobalMaxPooling2D',
    graph: () =>
      model((x) => {
        const e1 = act(bn(conv(x, 6, 'enc1'), 'enc1_bn'), 'relu', 'enc1_relu');
        const d1 = L.maxPooling2d({ poolSize: 2, name: 'down' }).apply(e1) as Sym;
        const e2 = act(conv(d1, 8, 'enc2', { useBias: true }), 'relu', 'enc2_relu');
        const up = L.conv2dTranspose({ filters: 5, kernelSize: 2, strides: 2, name: 'up' }).apply(e2) as Sym;
        const up2 = L.conv2d({ filters: 3, kernelSize: 1, name: 'up2_conv' }).apply(L.upSampling2d({ size: [2, 2], name: 'up2' }).apply(e2)) as Sym;
        const cat = L.concatenate({ name: 'skip' }).apply([e1, up, up2]) as Sym;
        const c = L.cropping2D({ cropping: [[1, 1], [1, 1]], name: 'crop' }).apply(act(conv(cat, 6, 'dec'), 'relu', 'dec_relu')) as Sym;
        return L.dense({ units: 3, name: 'classifier' }).apply(L.globalMaxPooling2d({ name: 'gmp' }).apply(c)) as Sym;
      }, [8, 8, 3]),
  },
  {
    label: 'preprocessing (Rescaling with an offset), ReLU(max_value), AveragePooling2D "same", Dropout, Softmax layer at the output',
    graph: () =>
      model((x) => {
        const r = L.rescaling({ scale: 1 / 255, offset: -0.5, name: 'rescale' }).apply(x) as Sym;
        // (tfjs 4.22's Resizing and CenterCrop report output shapes without the batch axis: no tfjs model can chain a conv after them.)
        const z = r;
        const a = L.reLU({ maxValue: 6, name: 'a_relu6' }).apply(bn(conv(z, 6, 'a'), 'a_bn')) as Sym;
        const p = L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'pool' }).apply(a) as Sym;
        const b = L.dropout({ rate: 0.3, name: 'drop' }).apply(act(conv(p, 5, 'b'), 'relu', 'b_relu')) as Sym;
        return L.softmax({ name: 'probabilities' }).apply(head(b)) as Sym;
      }, [16, 16, 3]),
  },
];

describe('engine: layer rules on converted-model shapes', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  FAMILIES.forEach((family, i) => {
    it(`${family.label}: pruned == masked == deployed, MACs formula == counted MACs`, async () => {
      const graph = family.graph();
      assert.ok(prunableGroups(analyzeGraph(graph)).length >= 2, 'several groups are prunable');
      const { graph: masked, dropped } = randomlyMasked(graph, 300 + i);
      assert.ok(dropped > 0, 'the mask drops channels');
      const pruned = pruneGraph(masked, keptChannelsFromMasks(masked));
      const deployed = reparameterizeGraph(pruned);
      assert.ok(!deployed.nodes.some((n) => n.className === 'BatchNormalization'), 'no BN is left in the deployed form');
      const input = randomInputFor(graph, 3, 40 + i);
      try {
        const expected = await predictGraph(masked, input);
        const scale = maxAbs(expected);
        assert.ok(scale > 1e-3, 'the output is not trivially zero');
        // The masked model reparameterized without pruning: masks fold into their producers (or stay).
        const maskedDeployed = reparameterizeGraph(masked);
        for (const [label, form] of [['pruned', pruned], ['deployed', deployed], ['masked, reparameterized', maskedDeployed]] as const) {
          const diff = maxAbsDiff(await predictGraph(form, input), expected);
          assert.ok(diff <= 1e-5 * scale, `${label}: max diff ${diff} > 1e-5 of the output scale ${scale}`);
        }
      } finally {
        input.dispose();
      }
      const kept = keptChannelsFromMasks(masked);
      const counts = new Map([...kept].map(([g, k]) => [g, k.length]));
      const widths = new Map(analyzeGraph(masked).groups.map((g) => [g.id, g.width]));
      assert.strictEqual(MacsFormula.fromGraph(masked).evaluate(counts, widths), summarizeGraph(deployed).totalMacs);
    });
  });

  it('every latent at 0.45 (none above the threshold): each group keeps its strongest channel, and deployed == masked', async () => {
    const model = buildBuiltin('builtin:default', { seed: 3 });
    const graph = graphFromModel(model);
    model.dispose();
    randomizeBatchNorm(graph, 11);
    const { graph: masked, layout } = insertMasks(graph);
    const random = mulberry32(5);
    for (const layerName of layout.layerOfGroup.values()) {
      const latent = masked.weights.get(layerName)!.latent.values;
      for (let c = 0; c < latent.length; c++) latent[c] = 0.45 - 0.01 * random();
    }
    for (const keep of keptChannelsFromMasks(masked).values()) assert.strictEqual(keep.length, 1);
    const input = randomInputFor(graph, 2, 9);
    try {
      const expected = await predictGraph(masked, input);
      const scale = maxAbs(expected);
      assert.ok(scale > 1e-3, 'the output is not trivially zero');
      for (const [label, form] of [['pruned and deployed', reparameterizeGraph(pruneGraph(masked, keptChannelsFromMasks(masked)))], ['masked, reparameterized', reparameterizeGraph(masked)]] as const) {
        const diff = maxAbsDiff(await predictGraph(form, input), expected);
        assert.ok(diff <= 1e-5 * scale, `${label}: max diff ${diff} > 1e-5 of ${scale}`);
      }
    } finally {
      input.dispose();
    }
  });

  it('a nested model (a Keras base model inside a classifier) is inlined: same outputs, its convs prunable', async () => {
    const base = tf.sequential({ name: 'base', layers: [
      L.conv2d({ inputShape: [10, 10, 3], filters: 6, kernelSize: 3, padding: 'same', name: 'base_conv1' }),
      L.batchNormalization({ name: 'base_bn1' }),
      L.reLU({ name: 'base_relu1' }),
      L.conv2d({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', name: 'base_conv2' }),
    ] });
    const input = tf.input({ shape: [10, 10, 3], name: 'image' });
    const features = base.apply(input) as Sym;
    const outer = tf.model({ inputs: input, outputs: head(features) });
    const graph = graphFromModel(outer);
    assert.ok(!graph.nodes.some((n) => n.className === 'Sequential'), 'no nested model node is left');
    assert.deepStrictEqual(prunableGroups(analyzeGraph(graph)).map((g) => g.name), ['base_conv1', 'base_conv2']);
    const x = randomInputFor(graph, 2, 4);
    try {
      const expected = outer.predict(x) as tf.Tensor;
      const diff = maxAbsDiff(await predictGraph(graph, x), expected.dataSync());
      assert.ok(diff <= 1e-6 * maxAbs(expected.dataSync()), `inlined graph differs by ${diff}`);
      expected.dispose();
    } finally {
      x.dispose();
      outer.dispose();
    }
  });

  it('a concatenation creates no group; its consumer reads the sum of its inputs\' groups at their offsets', () => {
    const graph = FAMILIES[0].graph();
    const analysis = analyzeGraph(graph);
    assert.deepStrictEqual(analysis.layoutOf.get('cat2')!.map((g) => analysis.groupById.get(g)!.name), ['stem', 'grow1', 'grow2']);
    const term = MacsFormula.fromGraph(graph).terms.find((t) => t.layer === 'transition')!;
    assert.strictEqual(term.input.length, 3, 'c_in of the transition conv is a sum of three groups');
  });

  it('squeeze-excitation: the excitation conv is coupled to the gated group, the squeeze conv is prunable', () => {
    const analysis = analyzeGraph(FAMILIES[2].graph());
    const gated = analysis.groupById.get(analysis.spaceOf.get('dw')!)!;
    assert.deepStrictEqual(gated.producerIds.slice().sort(), ['expand', 'se_expand']);
    assert.ok(gated.prunable, gated.fixedReason);
    assert.ok(analysis.groupById.get(analysis.spaceOf.get('se_reduce')!)!.prunable);
  });

  it('an unknown layer class is inspected: shown with its shape, the groups touching it held fixed with the reason', () => {
    const graph = model((x) => {
      const a = act(conv(x, 6, 'a'), 'relu', 'a_relu');
      const n = L.layerNormalization({ name: 'norm' }).apply(a) as Sym;
      const b = act(conv(n, 5, 'b'), 'relu', 'b_relu');
      return head(act(conv(b, 4, 'c'), 'relu', 'c_relu'));
    });
    const report = inspectGraph(graph, 'test', [12, 12, 3], 3);
    assert.deepStrictEqual(report.unknownLayers, [{ name: 'norm', type: 'LayerNormalization', outputShape: [12, 12, 6] }]);
    const a = report.fixedGroups!.find((g) => g.name === 'a')!;
    assert.match(a.reason, /feeds an unknown layer LayerNormalization/);
    assert.ok(report.fixedGroups!.some((g) => g.name === 'classifier' && /the model's output/.test(g.reason)));
    assert.deepStrictEqual(report.prunableGroups.map((g) => g.name), ['b', 'c']);
  });

  it('a BN after a concatenation holds the concatenated groups fixed (a mask covers one group)', () => {
    const graph = model((x) => {
      const a = conv(x, 4, 'a');
      const b = conv(x, 3, 'b');
      const c = act(bn(L.concatenate({ name: 'cat' }).apply([a, b]) as Sym, 'cat_bn'), 'relu', 'cat_relu');
      return head(act(conv(c, 5, 'd'), 'relu', 'd_relu'));
    });
    const fixed = fixedGroups(analyzeGraph(graph));
    for (const name of ['a', 'b']) assert.match(fixed.find((g) => g.name === name)!.fixedReason!, /after a concatenation by BatchNormalization 'cat_bn'/);
  });
});

describe('layer rules: channel axes written as positive indices (Keras-converted models)', () => {
  // Keras writes BatchNormalization(axis=3) and Concatenate(axis=3) for NHWC tensors (the real
  // InceptionV3 does); axis -1 and axis 3 are the same channel axis of a rank-4 tensor.
  const build = (axis: number) => {
    const x = tf.input({ shape: [8, 8, 3] });
    const a = tf.layers.conv2d({ name: 'a', filters: 6, kernelSize: 3, padding: 'same', useBias: false }).apply(x) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ name: 'b', filters: 4, kernelSize: 1, useBias: false }).apply(x) as tf.SymbolicTensor;
    const joined = tf.layers.concatenate({ name: 'join', axis }).apply([a, b]) as tf.SymbolicTensor;
    const normed = tf.layers.batchNormalization({ name: 'bn', axis }).apply(joined) as tf.SymbolicTensor;
    const y = tf.layers.conv2d({ name: 'c', filters: 5, kernelSize: 1 }).apply(tf.layers.reLU({ name: 'relu' }).apply(normed) as tf.SymbolicTensor) as tf.SymbolicTensor;
    return tf.model({ inputs: x, outputs: tf.layers.flatten({ name: 'flat' }).apply(y) as tf.SymbolicTensor });
  };
  it('axis 3 and axis -1 give the same channel groups, and neither is refused as a non-channel axis', () => {
    const names = (axis: number) => {
      const model = build(axis);
      const analysis = analyzeGraph(graphFromModel(model));
      model.dispose();
      return {
        prunable: prunableGroups(analysis).map((g) => g.name).sort(),
        reasons: fixedGroups(analysis).map((g) => g.fixedReason ?? ''),
      };
    };
    const last = names(-1);
    const positive = names(3);
    assert.deepStrictEqual(positive, last);
    assert.ok(!positive.reasons.some((r) => /non-channel axis/.test(r)), positive.reasons.join('; '));
  });
  it('a BatchNormalization over a spatial axis is still held fixed', () => {
    const x = tf.input({ shape: [8, 8, 3] });
    const a = tf.layers.conv2d({ name: 'a', filters: 6, kernelSize: 3, padding: 'same' }).apply(x) as tf.SymbolicTensor;
    const normed = tf.layers.batchNormalization({ name: 'bn', axis: 1 }).apply(a) as tf.SymbolicTensor;
    const y = tf.layers.conv2d({ name: 'c', filters: 5, kernelSize: 1 }).apply(normed) as tf.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: tf.layers.flatten({ name: 'flat' }).apply(y) as tf.SymbolicTensor });
    const analysis = analyzeGraph(graphFromModel(model));
    model.dispose();
    assert.ok(fixedGroups(analysis).some((g) => /non-channel axis/.test(g.fixedReason ?? '')));
  });
});
