/**
 * Channel groups: channels joined by an identity shortcut form one group, every RepVGG block is
 * a group of its own, and the model's input and output channels are never prunable.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { analyzeGraph, prunableGroups, type GraphAnalysis } from '../../src/engine/graph/analysis';
import { graphFromModel, type ModelGraph } from '../../src/engine/graph/modelGraph';
import { insertMasks } from '../../src/engine/transform/masks';
import { buildPlainCnn, buildResidualCnn } from '../../src/engine/zoo/cnn';
import { buildRepVgg, repVggStageWidths } from '../../src/engine/zoo/repvgg';

function graphOf(model: tf.LayersModel): ModelGraph {
  const graph = graphFromModel(model);
  model.dispose();
  return graph;
}

const groupOf = (analysis: GraphAnalysis, nodeId: string) => analysis.groupById.get(analysis.spaceOf.get(nodeId)!)!;

/** The input and the classifier's output groups exist and are fixed. */
function assertInputAndOutputFixed(graph: ModelGraph, analysis: GraphAnalysis): void {
  const input = groupOf(analysis, graph.inputIds[0]);
  assert.strictEqual(input.prunable, false, 'the input group is not prunable');
  const output = groupOf(analysis, graph.outputIds[0]);
  assert.strictEqual(output.prunable, false, "the classifier's output group is not prunable");
  assert.ok(output.producerIds.some((id) => id.startsWith('classifier')), 'the output group is produced by the classifier');
}

describe('engine: channel groups', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('residual CNN: each identity-shortcut stage is one prunable group with two producers', () => {
    const graph = graphOf(buildResidualCnn({ inputShape: [12, 12, 3], numClasses: 4, widthMultiplier: 0.5 }));
    const analysis = analyzeGraph(graph);
    for (const [stage, conv] of [['res1', 'stem_conv'], ['res2', 'widen_conv']]) {
      const group = groupOf(analysis, `${stage}_add`);
      assert.ok(group.prunable, `${stage}: ${group.fixedReason}`);
      assert.deepStrictEqual(group.producerIds.slice().sort(), [`${stage}_b_conv`, conv].sort(), `${stage}: the conv before the block and the block's second conv`);
      // Both sides of the Add and the block's output live in the one group.
      for (const member of [conv, `${stage}_b_conv`, `${stage}_b_bn`, `${stage}_relu`]) {
        assert.strictEqual(groupOf(analysis, member).id, group.id, `${member} is in the ${stage} group`);
      }
      // The block's inner conv is its own group.
      const inner = groupOf(analysis, `${stage}_a_conv`);
      assert.notStrictEqual(inner.id, group.id);
      assert.ok(inner.prunable);
      assert.deepStrictEqual(inner.producerIds, [`${stage}_a_conv`]);
    }
    assert.strictEqual(groupOf(analysis, 'dw_conv').id, groupOf(analysis, 'widen_conv').id, 'the depthwise conv keeps its input channels');
    assertInputAndOutputFixed(graph, analysis);

    // Coupled channels share one mask layer, applied after each producer unit.
    const { graph: masked, layout } = insertMasks(graph);
    const res1 = groupOf(analysis, 'res1_add');
    const maskLayer = layout.layerOfGroup.get(res1.id)!;
    assert.ok(maskLayer);
    const calls = masked.nodes.filter((n) => n.layerName === maskLayer);
    assert.ok(calls.length >= 2, `the shared mask '${maskLayer}' is applied at both producers (${calls.length} calls)`);
    assert.strictEqual(layout.layerOfGroup.size, prunableGroups(analysis).length, 'one mask layer per prunable group');
  });

  it('RepVGG: every block is its own prunable group, of its stage width', () => {
    const options = { variant: 'A0' as const, inputShape: [32, 32, 3] as [number, number, number], numClasses: 5, widthMultiplier: 0.125 };
    const graph = graphOf(buildRepVgg(options));
    const analysis = analyzeGraph(graph);
    const widths = repVggStageWidths(options);
    const blockAdds = graph.nodes.filter((n) => n.className === 'Add');
    assert.strictEqual(blockAdds.length, 22);
    const ids = new Set<string>();
    for (const add of blockAdds) {
      const group = groupOf(analysis, add.id);
      assert.ok(group.prunable, `${add.id}: ${group.fixedReason}`);
      assert.deepStrictEqual(group.producerIds, [add.id], `${add.id}: the block alone produces its channels`);
      const stage = Number(/^stage(\d)_/.exec(add.layerName)![1]);
      assert.strictEqual(group.width, widths[stage], `${add.id}: width of stage ${stage}`);
      ids.add(group.id);
    }
    assert.strictEqual(ids.size, blockAdds.length, 'no two blocks share a group');
    assert.strictEqual(analysis.blocks.length, blockAdds.length, 'every block is fusable');
    assert.strictEqual(prunableGroups(analysis).length, blockAdds.length, 'the blocks are the only prunable groups');
    assertInputAndOutputFixed(graph, analysis);
  });

  // insertMasks returns its layout keyed by group ids; everything downstream (keptChannelsFromMasks,
  // MacsFormula.fromGraph, MacsBudget) analyzes the masked graph. The two must name groups alike.
  for (const [label, build] of [
    ['plain CNN', () => buildPlainCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.25 })],
    ['residual CNN', () => buildResidualCnn({ inputShape: [12, 12, 3], numClasses: 4, widthMultiplier: 0.5 })],
    ['RepVGG-A0', () => buildRepVgg({ variant: 'A0', inputShape: [32, 32, 3], numClasses: 5, widthMultiplier: 0.125, blocksPerStage: [1, 1, 2, 1, 1] })],
  ] as const) {
    it(`${label}: the mask layout of insertMasks uses the group ids of the masked graph's analysis`, () => {
      const { graph: masked, layout } = insertMasks(graphOf(build()));
      const analysis = analyzeGraph(masked);
      const groups = prunableGroups(analysis);
      assert.strictEqual(layout.layerOfGroup.size, groups.length);
      for (const group of groups) {
        const layerName = layout.layerOfGroup.get(group.id);
        assert.ok(layerName, `masked-graph group '${group.id}' (${group.name}) has a mask layer in the layout (layout keys: ${[...layout.layerOfGroup.keys()].join(', ')})`);
        const calls = masked.nodes.filter((n) => n.layerName === layerName);
        assert.ok(calls.length > 0 && calls.every((n) => analysis.spaceOf.get(n.id) === group.id), `mask layer ${layerName} masks group ${group.id}`);
      }
    });
  }

  it('plain CNN: every conv is its own prunable group, input and output fixed', () => {
    const graph = graphOf(buildPlainCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.25 }));
    const analysis = analyzeGraph(graph);
    const producers = prunableGroups(analysis).map((g) => g.producerIds.join()).sort();
    assert.deepStrictEqual(producers, ['conv1_conv', 'conv2_conv', 'conv3_conv', 'conv4_conv', 'conv5_conv', 'conv6_conv']);
    assertInputAndOutputFixed(graph, analysis);
  });
});
