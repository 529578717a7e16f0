import { reparameterizeGraph } from '../transform/reparameterize';
import { analyzeGraph, GraphAnalysis } from './analysis';
import { nodeMacs } from './counting';
import { ModelGraph } from './modelGraph';

/** One conv or dense layer of the deployed form: MACs = coefficient * c_in * c_out. */
export interface MacsTerm {
  layer: string;
  coefficient: number;
  /** Prunable group whose kept count is c_in, or a fixed channel count. */
  input: string | number;
  /** Prunable group whose kept count is c_out, a fixed count, or 1 for depthwise (c_out = c_in). */
  output: string | number;
}

/**
 * The deployed model's MACs as a function of the kept channel count of each prunable group:
 * MACs(c) = sum_i k_i^2 H_i W_i c_{in(i)} c_{out(i)} (PaS eq. for the budget loss), where the
 * input of layer i is the kept output of the layer before it. Built from the deployed form, so
 * fused RepVGG blocks count as the single 3x3 conv they become.
 */
export class MacsFormula {
  constructor(readonly terms: MacsTerm[]) {}

  static fromGraph(graph: ModelGraph, analysis: GraphAnalysis = analyzeGraph(graph)): MacsFormula {
    const deployed = reparameterizeGraph(graph);
    const byId = new Map(deployed.nodes.map((n) => [n.id, n]));
    const trainingId = (id: string) => byId.get(id)?.origin ?? id;
    const spaceOf = (id: string) => analysis.spaceOf.get(trainingId(id));
    const terms: MacsTerm[] = [];
    for (const node of deployed.nodes) {
      const macs = nodeMacs(node);
      if (macs === 0) continue;
      const inSpace = spaceOf(node.inputs[0]);
      const outSpace = spaceOf(node.id);
      if (inSpace === undefined || outSpace === undefined) throw new Error(`layer '${node.id}' has no channel group`);
      const inGroup = analysis.groupById.get(inSpace)!;
      const outGroup = analysis.groupById.get(outSpace)!;
      if (node.className === 'DepthwiseConv2D') {
        terms.push({ layer: node.id, coefficient: macs / inGroup.width, input: inGroup.prunable ? inGroup.id : inGroup.width, output: 1 });
        continue;
      }
      terms.push({
        layer: node.id,
        coefficient: macs / (inGroup.width * outGroup.width),
        input: inGroup.prunable ? inGroup.id : inGroup.width,
        output: outGroup.prunable ? outGroup.id : outGroup.width,
      });
    }
    return new MacsFormula(terms);
  }

  /** MACs for plain kept counts (a group missing from the map keeps its full width). */
  evaluate(counts: Map<string, number>, fullWidths: Map<string, number>): number {
    const value = (ref: string | number) => (typeof ref === 'number' ? ref : counts.get(ref) ?? fullWidths.get(ref)!);
    return this.terms.reduce((sum, t) => sum + t.coefficient * value(t.input) * value(t.output), 0);
  }

  /** The same sum over any numeric type (tf scalars for the differentiable loss). */
  evaluateWith<T>(count: (group: string) => T, constant: (v: number) => T, mul: (a: T, b: T) => T, add: (a: T, b: T) => T, scale: (a: T, k: number) => T): T {
    let total: T = constant(0);
    for (const t of this.terms) {
      const a = typeof t.input === 'number' ? constant(t.input) : count(t.input);
      const b = typeof t.output === 'number' ? constant(t.output) : count(t.output);
      total = add(total, scale(mul(a, b), t.coefficient));
    }
    return total;
  }
}
