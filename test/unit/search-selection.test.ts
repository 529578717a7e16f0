import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/engine/data/random';
import { graphFromModel } from '../../src/engine/graph/modelGraph';
import { magnitudeSelection, projectOntoBudget, uniformSelection } from '../../src/engine/search/maskSelection';
import { MacsBudget } from '../../src/engine/budget/macsBudget';
import { insertMasks } from '../../src/engine/transform/masks';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { WidthLattice } from '../../src/engine/search/widthConstraints';

/** The masked default RepVGG and its budget, with BN gammas randomized so that magnitudes differ. */
function maskedDefault(seed: number) {
  const model = buildBuiltin('builtin:default', { seed });
  const plain = graphFromModel(model);
  model.dispose();
  const random = mulberry32(seed);
  for (const weights of plain.weights.values()) if (weights.gamma) weights.gamma.values.forEach((_, i, a) => (a[i] = 0.05 + random()));
  const { graph, layout } = insertMasks(plain);
  return { graph, budget: new MacsBudget(graph, layout) };
}

const countsOf = (selection: Map<string, number[]>) => new Map([...selection].map(([id, keep]) => [id, keep.length]));

describe('channel selection: the baselines and the projection onto the budget', () => {
  before(() => tf.setBackend('cpu'));

  for (const fraction of [0.5, 0.3]) {
    it(`uniform and magnitude land within 3% under a ${fraction} MACs target`, () => {
      const { graph, budget } = maskedDefault(3);
      const target = fraction * budget.fullMacs;
      for (const select of [uniformSelection, magnitudeSelection]) {
        const macs = budget.macsOf(countsOf(select(graph, budget, target)));
        assert.ok(macs <= target, `${select.name}: ${macs} > ${target}`);
        assert.ok(macs >= 0.97 * target, `${select.name}: ${macs} is more than 3% under ${target}`);
      }
    });
  }

  it('uniform keeps about the same fraction of every layer, magnitude keeps the largest gammas', () => {
    const { graph, budget } = maskedDefault(4);
    const uniform = uniformSelection(graph, budget, 0.5 * budget.fullMacs);
    const fractions = budget.groups.map((g) => uniform.get(g.id)!.length / g.width);
    assert.ok(Math.max(...fractions) - Math.min(...fractions) < 0.25, `fractions ${fractions}`);
    // Magnitude: every kept channel's gamma is at least every dropped channel's gamma in the same
    // group, or the group is at its one-channel floor.
    const magnitude = magnitudeSelection(graph, budget, 0.5 * budget.fullMacs);
    const layer = budget.groups[budget.groups.length - 1];
    const bn = [...graph.weights.keys()].find((name) => name.startsWith(layer.name) && name.endsWith('_bn3x3'))!;
    const bn1 = [...graph.weights.keys()].find((name) => name.startsWith(layer.name) && name.endsWith('_bn1x1'))!;
    const importance = (c: number) => Math.abs(graph.weights.get(bn)!.gamma.values[c]) + Math.abs(graph.weights.get(bn1)!.gamma.values[c]);
    const kept = new Set(magnitude.get(layer.id)!);
    const minKept = Math.min(...[...kept].map(importance));
    for (let c = 0; c < layer.width; c++) if (!kept.has(c)) assert.ok(importance(c) <= minKept + 1e-7);
  });

  it('projection drops the lowest latents when over the target and adds the highest back when under it', () => {
    const { budget } = maskedDefault(5);
    const target = 0.5 * budget.fullMacs;
    const random = mulberry32(9);
    const over = new Map(budget.groups.map((g) => [g.id, Float32Array.from({ length: g.width }, () => 0.6 + random())]));
    const down = projectOntoBudget(over, budget, target);
    const downMacs = budget.macsOf(countsOf(down.selection));
    assert.ok(downMacs <= target && down.moved > 0);
    // Every dropped channel's latent is <= every kept channel's latent of its layer (or the layer is at one channel).
    for (const g of budget.groups) {
      const keep = new Set(down.selection.get(g.id)!);
      const latent = over.get(g.id)!;
      const minKept = Math.min(...[...keep].map((c) => latent[c]));
      if (keep.size > 1) for (let c = 0; c < g.width; c++) if (!keep.has(c)) assert.ok(latent[c] <= minKept);
    }
    const under = new Map(budget.groups.map((g) => [g.id, Float32Array.from({ length: g.width }, (_, c) => (c === 0 ? 0.9 : 0.4 * random()))]));
    const up = projectOntoBudget(under, budget, target);
    const upMacs = budget.macsOf(countsOf(up.selection));
    assert.ok(upMacs <= target && upMacs >= 0.97 * target, `${upMacs} vs ${target}`);
  });

  it('the projection leaves no step that still fits after stepping down, also with coarse steps (round-to 8)', () => {
    const { budget } = maskedDefault(5);
    for (const roundTo of [1, 8] as const) {
      const lattice = new WidthLattice(budget.groups, { minKeep: 0.1, roundTo, keep: [] });
      for (const fraction of [0.5, 0.3]) {
        const target = fraction * budget.fullMacs;
        const random = mulberry32(11);
        // Every latent positive: the masks keep everything, so the projection has to step down.
        const over = new Map(budget.groups.map((g) => [g.id, Float32Array.from({ length: g.width }, () => 0.6 + random())]));
        const counts = countsOf(projectOntoBudget(over, budget, target, lattice).selection);
        assert.ok(budget.macsOf(counts) <= target, `round-to ${roundTo}, ${fraction}: over the target`);
        for (const [id, count] of counts) {
          const next = lattice.above(id, count);
          if (next === undefined) continue;
          const grown = new Map(counts).set(id, next);
          assert.ok(budget.macsOf(grown) > target, `round-to ${roundTo}, ${fraction}: ${id} could still step up from ${count} to ${next} within the target (${budget.macsOf(counts)} of ${target})`);
        }
      }
    }
  });
});
