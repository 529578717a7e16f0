import { analyzeGraph, GraphAnalysis } from '../graph/analysis';
import { macsPartsOf } from '../graph/layerRules';
import { ModelGraph } from '../graph/modelGraph';
import { reparameterizeGraph } from '../transform/reparameterize';

/** A count in a MACs term: a prunable group's kept count (by id) or a fixed number of channels. */
export type CountRef = string | number;

/**
 * One part of one layer of the deployed form: MACs = coefficient * c_in * c_out, where c_in is
 * the sum of `input` (a consumer of a concatenation reads several groups) and c_out the sum of
 * `output` (empty: the term does not scale with it, as a depthwise conv's).
 */
export interface MacsTerm {
  layer: string;
  coefficient: number;
  input: CountRef[];
  output: CountRef[];
}

/**
 * The deployed model's MACs as a function of the kept channel count of each prunable group:
 * MACs(c) = sum_i k_i^2 H_i W_i c_{in(i)} c_{out(i)} (PaS eq. for the budget loss), where the
 * input of layer i is the kept output of the layers before it. Built from the deployed form, so
 * fused RepVGG blocks count as the single 3x3 conv they become.
 */
export class MacsFormula {
  constructor(readonly terms: MacsTerm[]) {}

  static fromGraph(graph: ModelGraph, analysis: GraphAnalysis = analyzeGraph(graph)): MacsFormula {
    const deployed = reparameterizeGraph(graph);
    const byId = new Map(deployed.nodes.map((n) => [n.id, n]));
    const trainingId = (id: string) => byId.get(id)?.origin ?? id;
    const refsOf = (deployedId: string, layer: string): CountRef[] => {
      const layout = analysis.layoutOf.get(trainingId(deployedId));
      if (layout === undefined) throw new Error(`layer '${layer}' has no channel group`);
      return layout.map((id) => {
        const group = analysis.groupById.get(id)!;
        return group.prunable ? group.id : group.width;
      });
    };
    const fullCount = (refs: CountRef[]) => refs.reduce<number>((sum, r) => sum + (typeof r === 'number' ? r : analysis.groupById.get(r)!.width), 0);
    const terms: MacsTerm[] = [];
    for (const node of deployed.nodes) {
      for (const part of macsPartsOf(node)) {
        if (part.macs === 0) continue;
        const input = part.perInput ? refsOf(node.inputs[0], node.id) : [];
        const output = part.perOutput ? refsOf(node.id, node.id) : [];
        const full = (part.perInput ? fullCount(input) : 1) * (part.perOutput ? fullCount(output) : 1);
        terms.push({ layer: node.id, coefficient: part.macs / full, input, output });
      }
    }
    return new MacsFormula(terms);
  }

  /** MACs for plain kept counts (a group missing from the map keeps its full width). */
  evaluate(counts: Map<string, number>, fullWidths: Map<string, number>): number {
    return this.evaluateWith<number>((g) => counts.get(g) ?? fullWidths.get(g)!, (v) => v, (a, b) => a * b, (a, b) => a + b, (a, k) => a * k);
  }

  /** The same sum over any numeric type (tf scalars for the differentiable loss). */
  evaluateWith<T>(count: (group: string) => T, constant: (v: number) => T, mul: (a: T, b: T) => T, add: (a: T, b: T) => T, scale: (a: T, k: number) => T): T {
    const sum = (refs: CountRef[]): T => {
      if (refs.length === 0) return constant(1);
      const fixed = refs.reduce<number>((s, r) => s + (typeof r === 'number' ? r : 0), 0);
      let total: T | undefined = fixed > 0 ? constant(fixed) : undefined;
      for (const r of refs) if (typeof r === 'string') total = total === undefined ? count(r) : add(total, count(r));
      return total!;
    };
    let total: T = constant(0);
    for (const t of this.terms) total = add(total, scale(mul(sum(t.input), sum(t.output)), t.coefficient));
    return total;
  }
}
