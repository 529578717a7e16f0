import * as tf from '@tensorflow/tfjs';
import type { ModelReport } from './reports';
import { analyzeGraph, prunableGroups } from './graph/analysis';
import { summarizeGraph } from './graph/counting';
import { MacsFormula } from './budget/macsFormula';
import { graphFromModel, ModelGraph } from './graph/modelGraph';
import { classCount, imageInputShape } from './model';
import { reparameterizeGraph } from './transform/reparameterize';

/** Per-layer widths, MACs and params of a model in its training-time and deployed forms. */
export function inspectGraph(graph: ModelGraph, modelPath: string, inputShape: number[], numClasses: number): ModelReport {
  const analysis = analyzeGraph(graph);
  const groupName = new Map(prunableGroups(analysis).map((g) => [g.id, g.name]));
  const byName = (ref: string | number) => (typeof ref === 'number' ? ref : groupName.get(ref) ?? ref);
  return {
    modelPath,
    inputShape,
    numClasses,
    trainingForm: summarizeGraph(graph),
    deployedForm: summarizeGraph(reparameterizeGraph(graph)),
    prunableGroups: prunableGroups(analysis).map((g) => ({
      name: g.name,
      width: g.width,
      // A fused block is named by its convs, the layers a user recognizes.
      layers: g.producerIds.flatMap((id) => {
        const block = analysis.blockOfMember.get(id);
        if (!block) return [analysis.index.node(id).layerName];
        return block.branches.flatMap((b) => (b.convId ? [analysis.index.node(b.convId).layerName] : []));
      }),
    })),
    macsFormula: MacsFormula.fromGraph(graph, analysis).terms.map((t) => ({ coefficient: t.coefficient, input: t.input.map(byName), output: t.output.map(byName) })),
  };
}

export function inspectModel(model: tf.LayersModel, modelPath: string): ModelReport {
  return inspectGraph(graphFromModel(model), modelPath, imageInputShape(model, modelPath), classCount(model, modelPath));
}
