/**
 * Width constraints (--min-keep, --round-to, --keep) hold for every method's choice, and a target
 * they make unreachable is refused before anything is written.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/engine/data/random';
import { graphFromModel } from '../../src/engine/graph/modelGraph';
import { magnitudeSelection, projectOntoBudget, uniformSelection } from '../../src/engine/search/maskSelection';
import { WidthConstraints, WidthLattice } from '../../src/engine/search/widthConstraints';
import { MacsBudget } from '../../src/engine/budget/macsBudget';
import { lowestKeptCount } from '../../src/engine/budgetPreview';
import { insertMasks } from '../../src/engine/transform/masks';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { makeTempDir, runCli } from '../support/cli';

/** The masked default RepVGG at width x0.5 (groups of 24..96 and 640 channels), random BN gammas. */
function maskedModel(seed: number) {
  const model = buildBuiltin('builtin:default', { seed, widthMultiplier: 0.5 });
  const plain = graphFromModel(model);
  model.dispose();
  const random = mulberry32(seed);
  for (const weights of plain.weights.values()) if (weights.gamma) weights.gamma.values.forEach((_, i, a) => (a[i] = 0.05 + random()));
  const { graph, layout } = insertMasks(plain);
  return { graph, budget: new MacsBudget(graph, layout), random };
}

/** Every group's kept count obeys the constraints as the options document them. */
function assertObeys(selection: Map<string, number[]>, budget: MacsBudget, constraints: WidthConstraints, label: string): void {
  for (const g of budget.groups) {
    const k = selection.get(g.id)!.length;
    if (constraints.keep.includes(g.name)) {
      assert.equal(k, g.width, `${label}: kept group ${g.name} at ${k} of ${g.width}`);
      continue;
    }
    assert.ok(k >= Math.max(1, Math.ceil(constraints.minKeep * g.width - 1e-9)), `${label}: ${g.name} keeps ${k} of ${g.width}, under --min-keep ${constraints.minKeep}`);
    if (constraints.roundTo > 1 && g.width >= constraints.roundTo) {
      assert.ok(k % constraints.roundTo === 0 || k === g.width, `${label}: ${g.name} keeps ${k}, not a multiple of ${constraints.roundTo}`);
    }
    assert.equal(new Set(selection.get(g.id)!).size, k, `${label}: duplicate channels`);
  }
}

const countsOf = (selection: Map<string, number[]>) => new Map([...selection].map(([id, keep]) => [id, keep.length]));

describe('width constraints', function () {
  this.timeout(120_000);
  before(() => tf.setBackend('cpu'));

  const CASES: Array<{ constraints: Omit<WidthConstraints, 'keep'>; keepFirst: boolean; target: number }> = [
    { constraints: { minKeep: 0.1, roundTo: 1 }, keepFirst: false, target: 0.3 },
    { constraints: { minKeep: 0.25, roundTo: 8 }, keepFirst: false, target: 0.4 },
    { constraints: { minKeep: 0, roundTo: 4 }, keepFirst: true, target: 0.3 },
    { constraints: { minKeep: 0.5, roundTo: 1 }, keepFirst: true, target: 0.5 },
  ];
  CASES.forEach(({ constraints: partial, keepFirst, target }, i) => {
    it(`pas (projection of random latents), uniform and magnitude obey --min-keep ${partial.minKeep} --round-to ${partial.roundTo}${keepFirst ? ' --keep <first group>' : ''} at ${target} and stay within the MACs target`, () => {
      const { graph, budget, random } = maskedModel(10 + i);
      const constraints: WidthConstraints = { ...partial, keep: keepFirst ? [budget.groups[0].name] : [] };
      const lattice = new WidthLattice(budget.groups, constraints);
      const targetMacs = target * budget.fullMacs;
      assert.ok(budget.macsOf(lattice.floors()) <= targetMacs, 'the case is reachable');
      // Latents as a search leaves them: some far below the threshold, some near it, some above.
      for (const spread of [0.3, 1, 2]) {
        const latents = new Map(budget.groups.map((g) => [g.id, Float32Array.from({ length: g.width }, () => 0.5 + spread * (random() - 0.6))]));
        const projected = projectOntoBudget(latents, budget, targetMacs, lattice).selection;
        assertObeys(projected, budget, constraints, `pas (spread ${spread})`);
        assert.ok(budget.macsOf(countsOf(projected)) <= targetMacs, 'pas over the target');
      }
      for (const select of [uniformSelection, magnitudeSelection]) {
        const selection = select(graph, budget, targetMacs, lattice);
        assertObeys(selection, budget, constraints, select.name);
        const macs = budget.macsOf(countsOf(selection));
        assert.ok(macs <= targetMacs, `${select.name}: ${macs} > ${targetMacs}`);
        // Not far under either: the step sizes of --round-to bound how close a method can get.
        assert.ok(macs >= 0.85 * targetMacs, `${select.name}: ${macs} is far under ${targetMacs}`);
      }
    });
  });

  it('the lattice: a group narrower than --round-to takes any count above its floor; a kept group only its width', () => {
    const lattice = new WidthLattice([{ id: 'a', name: 'a', width: 6 }, { id: 'b', name: 'b', width: 20 }, { id: 'c', name: 'c', width: 12 }], { minKeep: 0.1, roundTo: 8, keep: ['c'] });
    assert.deepEqual(lattice.allowed('a'), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(lattice.allowed('b'), [8, 16, 20]);
    assert.deepEqual(lattice.allowed('c'), [12]);
    assert.equal(new WidthLattice([{ id: 'd', name: 'd', width: 10 }], { minKeep: 0.25, roundTo: 1, keep: [] }).floor('d'), 3);
    assert.equal(new WidthLattice([{ id: 'e', name: 'e', width: 10 }], { minKeep: 0, roundTo: 1, keep: [] }).floor('e'), 1);
  });

  describe('refusals through the CLI (exit 2, nothing written)', () => {
    let work: string;
    before(() => (work = makeTempDir('pas-constraints-')));
    after(() => fs.rmSync(work, { recursive: true, force: true }));

    it('a target the constraints make unreachable names the lowest reachable fraction', () => {
      const out = path.join(work, 'unreachable');
      const result = runCli(['search', 'builtin:default', '--target-macs', '0.3', '--min-keep', '0.6', '--pretrain-epochs', '0', '--out', out, '--backend', 'cpu']);
      assert.equal(result.status, 2, result.stderr);
      const match = /narrowest model they allow has ([0-9.]+)% of the MACs/.exec(result.stderr);
      assert.ok(match, result.stderr);
      // With every layer at ceil(0.6 x width), the MACs are above 0.6^2 of the full model's.
      assert.ok(Number(match[1]) > 36 && Number(match[1]) < 100, result.stderr);
      assert.ok(!fs.existsSync(out), 'the output folder was created');
    });

    it('an unknown --keep name lists the groups', () => {
      const out = path.join(work, 'unknown-keep');
      const result = runCli(['search', 'builtin:default', '--keep', 'stage0_block0,no_such_layer', '--pretrain-epochs', '0', '--out', out, '--backend', 'cpu']);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /no_such_layer/);
      assert.match(result.stderr, /stage4_block0/);
      assert.match(result.stderr, /no prunable group: no_such_layer;/, 'only the unknown name is reported as unknown');
      assert.ok(!fs.existsSync(out), 'the output folder was created');
    });
  });
});

describe('width constraints: one floor rule for the engine and the setup form', () => {
  it('the lattice floor of every group equals the budget preview\'s lowest kept count', () => {
    for (let width = 1; width <= 70; width++) {
      for (const minKeep of [0, 0.05, 0.1, 0.25, 0.5, 0.99]) {
        for (const roundTo of [1, 2, 4, 8, 16]) {
          const constraints = { minKeep, roundTo, keep: [] as string[] };
          const lattice = new WidthLattice([{ id: 'g', name: 'g', width }], constraints);
          assert.equal(lattice.floor('g'), lowestKeptCount('g', width, constraints), `width ${width}, min-keep ${minKeep}, round-to ${roundTo}`);
          for (const c of lattice.allowed('g')) assert.ok(c === width || roundTo === 1 || width < roundTo || c % roundTo === 0, `count ${c} of width ${width} is no multiple of ${roundTo}`);
        }
      }
    }
  });
});
