import * as tf from '@tensorflow/tfjs';
import { analyzeGraph, fixedGroups, GraphAnalysis, prunableGroups } from '../graph/analysis';
import { MacsFormula } from './macsFormula';
import { ModelGraph } from '../graph/modelGraph';
import { binaryMaskSte, keptChannelIndices } from '../layers/dbc';
import { insertMasks, MaskLayout } from '../transform/masks';

/**
 * The MACs budget of a masked model: MACs as a differentiable function of the kept-channel counts
 * (sums of the STE masks), and the PaS budget loss alpha * ((MACs - target) / MACs_full)^2.
 *
 * The paper writes the loss in G-MACs; dividing by the full model's MACs instead makes alpha
 * independent of the model's size (our models are a thousand times smaller than ImageNet's).
 */
export class MacsBudget {
  readonly formula: MacsFormula;
  readonly analysis: GraphAnalysis;
  readonly fullWidths: Map<string, number>;
  /** Deployed MACs with every channel kept. */
  readonly fullMacs: number;
  /** Deployed MACs with every prunable group at width 1: no mask can go below. */
  readonly minimumMacs: number;

  constructor(maskedGraph: ModelGraph, readonly layout: MaskLayout) {
    this.analysis = analyzeGraph(maskedGraph);
    this.formula = MacsFormula.fromGraph(maskedGraph, this.analysis);
    this.fullWidths = new Map(this.analysis.groups.map((g) => [g.id, g.width]));
    this.fullMacs = this.formula.evaluate(new Map(), this.fullWidths);
    this.minimumMacs = this.formula.evaluate(new Map(prunableGroups(this.analysis).map((g) => [g.id, 1])), this.fullWidths);
  }

  /** The budget of a model without masks yet: the masks it will get are inserted on a copy. */
  static forUnmaskedGraph(graph: ModelGraph): MacsBudget {
    const { graph: masked, layout } = insertMasks(graph);
    return new MacsBudget(masked, layout);
  }

  /** Prunable group ids in graph order, with their DBC layer names. */
  get groups(): Array<{ id: string; name: string; width: number; layerName: string }> {
    return prunableGroups(this.analysis).map((g) => ({ id: g.id, name: g.name, width: g.width, layerName: this.layout.layerOfGroup.get(g.id)! }));
  }

  /** MACs of kept counts (plain numbers). */
  macsOf(counts: Map<string, number>): number {
    return this.formula.evaluate(counts, this.fullWidths);
  }

  /** Kept counts from the latent values of the model's DBC layers. */
  keptCounts(model: tf.LayersModel): Map<string, number> {
    const counts = new Map<string, number>();
    for (const group of this.groups) {
      const latent = model.getLayer(group.layerName).getWeights()[0].dataSync();
      counts.set(group.id, keptChannelIndices(latent).length);
    }
    return counts;
  }

  /**
   * Differentiable MACs of the model's current masks (a scalar tensor; call inside a tape).
   * `floors` (width constraints) count a group below its floor at the floor: the projection will
   * restore those channels, and max() sends no gradient into a count already held at its floor,
   * so the pull goes to the layers that can still give (a kept group's floor is its width).
   */
  differentiableMacs(model: tf.LayersModel, floors?: Map<string, number>): tf.Scalar {
    const counts = new Map<string, tf.Scalar>();
    for (const group of this.groups) {
      const latent = model.getLayer(group.layerName).weights[0].read();
      const count = tf.sum(binaryMaskSte(latent)) as tf.Scalar;
      const floor = floors?.get(group.id);
      counts.set(group.id, floor === undefined ? count : (tf.maximum(count, floor) as tf.Scalar));
    }
    return this.formula.evaluateWith<tf.Scalar>(
      (g) => counts.get(g)!,
      (v) => tf.scalar(v),
      (a, b) => tf.mul(a, b),
      (a, b) => tf.add(a, b),
      (a, k) => tf.mul(a, k),
    );
  }

  /** alpha * ((MACs - target) / fullMacs)^2: pulls onto the target from both sides. */
  loss(model: tf.LayersModel, targetMacs: number, alpha: number, floors?: Map<string, number>): tf.Scalar {
    const relative = tf.div(tf.sub(this.differentiableMacs(model, floors), targetMacs), this.fullMacs);
    return tf.mul(tf.square(relative), alpha) as tf.Scalar;
  }
}

/** One line for a model whose every channel group is held at full width, with the first reasons. */
export function nothingToPruneMessage(budget: MacsBudget): string {
  const fixed = fixedGroups(budget.analysis);
  const reasons = fixed.slice(0, 3).map((g) => `'${g.name}' ${g.fixedReason}`);
  const more = fixed.length > 3 ? `; and ${fixed.length - 3} more` : '';
  return `nothing left to prune: every channel group is held at full width${reasons.length > 0 ? ` (${reasons.join('; ')}${more})` : ' (no conv or dense layer whose channels can be removed)'}`;
}
