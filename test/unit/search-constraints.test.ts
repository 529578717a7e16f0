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
import { CONSTRAINTS_OF_RUNS_WITHOUT_THEM, DEFAULT_WIDTH_CONSTRAINTS, RoundTo, validateWidthConstraints, WidthConstraints, WidthLattice } from '../../src/engine/search/widthConstraints';
import { MacsBudget } from '../../src/engine/budget/macsBudget';
import { lowestKeptCount } from '../../src/engine/budgetPreview';
import { insertMasks } from '../../src/engine/transform/masks';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { isPasInputError } from '../../src/engine/errors';
import { constraintsOf } from '../../src/engine/search/job';
import type { RunSettings } from '../../src/engine/search/runState';
import { makeTempDir, runCli, runCliAndKill } from '../support/cli';
import type { SearchReport } from '../../src/shared/workerProtocol';
import { InvalidArgumentError } from 'commander';
import { parseRoundToOption } from '../../src/cli/options';
import { settingsFrom } from '../../src/cli/commands/search';

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

/** The step `--round-to` documents for a group: N, or under auto 8 from 64 channels and 1 below (written out here, not taken from the engine). */
function documentedStep(width: number, roundTo: RoundTo): number {
  if (roundTo === 'auto') return width >= 64 ? 8 : 1;
  return roundTo;
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
    const step = documentedStep(g.width, constraints.roundTo);
    if (step > 1 && g.width >= step) {
      assert.ok(k % step === 0 || k === g.width, `${label}: ${g.name} keeps ${k}, not a multiple of ${step}`);
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
    { constraints: { minKeep: 0.1, roundTo: 'auto' }, keepFirst: false, target: 0.4 },
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

  it('the lattice under --round-to auto: any count below 64 channels, multiples of 8 (and the full width) from 64', () => {
    const range = (from: number, to: number, step = 1) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);
    const groups = [48, 63, 64, 96, 100, 1280].map((width) => ({ id: `w${width}`, name: `w${width}`, width }));
    const lattice = new WidthLattice(groups, { minKeep: 0.1, roundTo: 'auto', keep: [] });
    // 48 wide: every count from ceil(4.8) = 5 up, as --round-to 1 gives.
    assert.deepEqual(lattice.allowed('w48'), range(5, 48));
    assert.deepEqual(lattice.allowed('w48'), new WidthLattice([groups[0]], { minKeep: 0.1, roundTo: 1, keep: [] }).allowed('w48'));
    assert.deepEqual(lattice.allowed('w63'), range(7, 63));
    // 64 wide: the floor ceil(6.4) = 7 rounds up to 8; eight widths of 12.5% each.
    assert.deepEqual(lattice.allowed('w64'), range(8, 64, 8));
    // 96 wide: the floor ceil(9.6) = 10 rounds up to 16, then multiples of 8 to the full width.
    assert.deepEqual(lattice.allowed('w96'), range(16, 96, 8));
    // 100 wide: multiples of 8 from 16 to 96, then the full (unrounded) width.
    assert.deepEqual(lattice.allowed('w100'), [...range(16, 96, 8), 100]);
    assert.deepEqual(lattice.allowed('w1280'), range(128, 1280, 8));
    assert.deepEqual(groups.map((g) => lattice.step(g.id)), [1, 1, 8, 8, 8, 8]);
    // A group held at full width under auto keeps only its width.
    assert.deepEqual(new WidthLattice([groups[3]], { minKeep: 0.1, roundTo: 'auto', keep: ['w96'] }).allowed('w96'), [96]);
  });

  it('parses --round-to: auto or a whole number from 1', () => {
    assert.equal(parseRoundToOption('auto'), 'auto');
    assert.equal(parseRoundToOption('1'), 1);
    assert.equal(parseRoundToOption('8'), 8);
    for (const bad of ['0', '-8', '2.5', '1e3', '', 'Auto', 'auto8', '0x10']) assert.throws(() => parseRoundToOption(bad), InvalidArgumentError, bad);
    // Without the option a search gets the default, auto.
    assert.equal(settingsFrom('builtin:default', { data: 'sample', targetMacs: 0.5, searchEpochs: 1, finetuneEpochs: 0, method: 'pas', seed: 1, batchSize: 32, alpha: 8 }).constraints?.roundTo, 'auto');
  });

  it('auto is the default; runs saved without constraints resume with the rule they started under (any width)', () => {
    assert.equal(DEFAULT_WIDTH_CONSTRAINTS.roundTo, 'auto');
    assert.equal(CONSTRAINTS_OF_RUNS_WITHOUT_THEM.roundTo, 1);
    assert.equal(constraintsOf({ constraints: undefined } as unknown as RunSettings), CONSTRAINTS_OF_RUNS_WITHOUT_THEM);
    // A checkpoint's numeric rule (every run saved before auto existed) stays numeric.
    const saved = { minKeep: 0.1, roundTo: 8, keep: [] };
    assert.equal(constraintsOf({ constraints: saved } as unknown as RunSettings), saved);
    for (const good of [1, 8, 'auto'] as RoundTo[]) validateWidthConstraints({ minKeep: 0.1, roundTo: good, keep: [] });
    for (const bad of [0, -8, 2.5, 'Auto', '8', null]) {
      assert.throws(() => validateWidthConstraints({ minKeep: 0.1, roundTo: bad as unknown as RoundTo, keep: [] }), (e: Error) => isPasInputError(e) && /--round-to must be auto or a positive integer/.test(e.message), String(bad));
    }
  });

  describe('through the CLI: refusals (exit 2, nothing written), and resume', () => {
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

    it('--round-to takes auto or a whole number from 1; anything else is a usage error (exit 2) saying so', () => {
      for (const bad of ['eight', '0', '2.5', 'AUTO']) {
        const out = path.join(work, `round-to-${bad}`);
        const result = runCli(['search', 'builtin:default', '--round-to', bad, '--pretrain-epochs', '0', '--out', out, '--backend', 'cpu']);
        assert.equal(result.status, 2, `${bad}: ${result.stderr}`);
        assert.match(result.stderr, new RegExp(`--round-to.*expected auto or a whole number from 1 \\(1: any width\\), got '${bad.replace('.', '\\.')}'`), result.stderr);
        assert.ok(!fs.existsSync(out), 'the output folder was created');
      }
      // auto reaches the run's constraints (and their refusal names it).
      const out = path.join(work, 'round-to-auto');
      const result = runCli(['search', 'builtin:default', '--round-to', 'auto', '--target-macs', '0.3', '--min-keep', '0.6', '--pretrain-epochs', '0', '--out', out, '--backend', 'cpu']);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /unreachable under the width constraints \(--min-keep 0\.6, --round-to auto\)/);
    });

    it('a stopped run resumes with the rule it saved: a number stays that number, no rule at all (runs from before constraints) is any width', async () => {
      // x0.5: groups of 24 to 96 channels and a 640-channel head, so auto and 1 differ.
      const fresh = path.join(work, 'resume-fresh');
      const args = ['search', 'builtin:default', '--width-multiplier', '0.5', '--method', 'uniform', '--target-macs', '0.5', '--pretrain-epochs', '2', '--search-epochs', '0', '--finetune-epochs', '1',
        '--data', 'sample', '--max-train', '64', '--max-test', '32', '--batch-size', '32', '--seed', '2', '--workers', '1', '--backend', 'wasm', '--out', fresh, '--json'];
      // Stopped in the second pretraining epoch: the widths are not chosen yet, the saved rule will choose them.
      const stopped = await runCliAndKill(args, (e) => e.type === 'batch' && e.phase === 'pretrain' && (e as { epoch?: number }).epoch === 2, 'SIGINT');
      assert.equal(stopped.exitCode, 130, stopped.stderr.slice(-2000));
      const stateFile = (dir: string) => path.join(dir, 'state.json');
      const state = JSON.parse(fs.readFileSync(stateFile(fresh), 'utf8'));
      assert.equal(state.phase, 'pretrain');
      assert.equal(state.settings.constraints.roundTo, 'auto', 'a new run saves the default rule by name');

      const resumeWith = (name: string, constraints: unknown) => {
        const dir = path.join(work, name);
        fs.cpSync(fresh, dir, { recursive: true });
        const edited = { ...state, settings: { ...state.settings, constraints } };
        if (constraints === undefined) delete edited.settings.constraints;
        fs.writeFileSync(stateFile(dir), JSON.stringify(edited));
        const result = runCli(['search', '--resume', dir, '--backend', 'wasm', '--workers', '1', '--json']);
        assert.equal(result.status, 0, `${name}: ${result.stderr.slice(-2000)}`);
        return JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as SearchReport;
      };
      const legacy = resumeWith('resume-legacy', undefined);
      assert.equal(legacy.constraints?.roundTo, 1);
      assert.ok(legacy.layers.every((l) => l.roundingStep === 1), JSON.stringify(legacy.layers));
      const eight = resumeWith('resume-eight', { minKeep: 0.1, roundTo: 8, keep: [] });
      assert.equal(eight.constraints?.roundTo, 8);
      for (const l of eight.layers) assert.ok(l.searchedWidth % 8 === 0 || l.searchedWidth === l.originalWidth, `${l.name}: ${l.searchedWidth} of ${l.originalWidth}`);
      // The rules differ on this model: any width leaves some group off the multiples of 8.
      assert.ok(legacy.layers.some((l) => l.searchedWidth % 8 !== 0), JSON.stringify(legacy.layers.map((l) => l.searchedWidth)));
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
    for (let width = 1; width <= 140; width++) {
      for (const minKeep of [0, 0.05, 0.1, 0.25, 0.5, 0.99]) {
        for (const roundTo of [1, 2, 4, 8, 16, 'auto'] as RoundTo[]) {
          const constraints = { minKeep, roundTo, keep: [] as string[] };
          const lattice = new WidthLattice([{ id: 'g', name: 'g', width }], constraints);
          assert.equal(lattice.floor('g'), lowestKeptCount('g', width, constraints), `width ${width}, min-keep ${minKeep}, round-to ${roundTo}`);
          const step = documentedStep(width, roundTo);
          for (const c of lattice.allowed('g')) assert.ok(c === width || step === 1 || width < step || c % step === 0, `count ${c} of width ${width} is no multiple of ${step}`);
        }
      }
    }
  });
});
