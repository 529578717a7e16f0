import * as tf from '@tensorflow/tfjs';
import type { ModelReport } from './reports';
import { analyzeGraph, ChannelGroup, fixedGroups, GraphAnalysis, prunableGroups } from './graph/analysis';
import { summarizeGraph } from './graph/counting';
import { hasLayerRule } from './graph/layerRules';
import { MacsFormula } from './budget/macsFormula';
import { graphFromModel, ModelGraph } from './graph/modelGraph';
import { reparameterizeWithReport } from './transform/reparameterize';

/** The layers a user recognizes in a group: its producers, a fused block named by its convs. */
function groupLayers(analysis: GraphAnalysis, group: ChannelGroup): string[] {
  return group.producerIds.flatMap((id) => {
    const block = analysis.blockOfMember.get(id);
    if (!block) return [analysis.index.node(id).layerName];
    return block.branches.flatMap((b) => (b.convId ? [analysis.index.node(b.convId).layerName] : []));
  });
}

/**
 * Per-layer widths, MACs and params of a model in its training-time and deployed forms, its
 * prunable groups, and the pre-flight: groups held fixed (and why), layers PaS has no rule for,
 * blocks that stay unfused.
 */
export function inspectGraph(graph: ModelGraph, modelPath: string, inputShape: number[], numClasses: number): ModelReport {
  const analysis = analyzeGraph(graph);
  const deployed = reparameterizeWithReport(graph);
  const groupName = new Map(prunableGroups(analysis).map((g) => [g.id, g.name]));
  const byName = (ref: string | number) => (typeof ref === 'number' ? ref : groupName.get(ref) ?? ref);
  return {
    modelPath,
    inputShape,
    numClasses,
    trainingForm: summarizeGraph(graph),
    deployedForm: summarizeGraph(deployed.graph),
    prunableGroups: prunableGroups(analysis).map((g) => ({ name: g.name, width: g.width, layers: groupLayers(analysis, g) })),
    fixedGroups: fixedGroups(analysis).map((g) => ({ name: g.name, width: g.width, layers: groupLayers(analysis, g), reason: g.fixedReason ?? '' })),
    unknownLayers: graph.nodes
      .filter((n) => !hasLayerRule(n.className))
      .map((n) => ({ name: n.id, type: n.className, outputShape: n.outputShape.slice() })),
    unfusedBlocks: deployed.unfused,
    macsFormula: MacsFormula.fromGraph(graph, analysis).terms.map((t) => ({ coefficient: t.coefficient, input: t.input.map(byName), output: t.output.map(byName) })),
  };
}

/**
 * Inspects any Layers model TF.js loaded: unlike a search, inspection needs no single image input
 * or classifier output (the report then shows the first input's shape and the output's last axis).
 */
export function inspectModel(model: tf.LayersModel, modelPath: string): ModelReport {
  const inputShape = model.inputs[0].shape.slice(1).map((d) => d ?? 0);
  const outputShape = model.outputs[0].shape;
  return inspectGraph(graphFromModel(model), modelPath, inputShape, outputShape[outputShape.length - 1] ?? 0);
}
