/**
 * The run-setup form's pure parts: form state -> CLI arguments, validation of what a webview
 * posts, defaults, the budget preview (checked against the engine's own MACs of pruned models),
 * the shared count formatter and the host's Disposable base.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { evaluateMacsTerms, lowestKeptCount, NO_WIDTH_CONSTRAINTS, previewBudget, type RoundTo } from '../../src/engine/budgetPreview';
import { analyzeGraph, prunableGroups } from '../../src/engine/graph/analysis';
import { summarizeGraph } from '../../src/engine/graph/counting';
import { graphFromModel } from '../../src/engine/graph/modelGraph';
import { inspectGraph } from '../../src/engine/inspect';
import { MacsBudget } from '../../src/engine/budget/macsBudget';
import { maskLayoutOf } from '../../src/engine/transform/masks';
import { keptChannelsFromMasks, pruneGraph } from '../../src/engine/transform/prune';
import { reparameterizeGraph } from '../../src/engine/transform/reparameterize';
import { buildResidualCnn } from '../../src/engine/zoo/cnn';
import { buildRepVgg } from '../../src/engine/zoo/repvgg';
import { buildSearchArgs, searchOptionsFromSetup } from '../../src/extension/core/cliArgs';
import { validateWebviewMessage } from '../../src/extension/core/webviewMessages';
import { Disposable } from '../../src/extension/dispose';
import { formatCount, formatPercent } from '../../src/shared/format';
import { CLI_DEFAULTS, defaultRunSetup, roundToSetting, validateRunSetup, type RunSetup } from '../../src/shared/runSetup';
import { DEFAULT_WIDTH_CONSTRAINTS, WidthLattice } from '../../src/engine/search/widthConstraints';
import { mulberry32, randomlyMasked } from '../support/tensors';
import { REPO_ROOT } from '../support/cli';

const MODEL = '/work/models/net/model.json';
const OUT = '/work/models/net-pas';
const argsOf = (setup: RunSetup) => buildSearchArgs(searchOptionsFromSetup(setup, MODEL, OUT, 'auto'));
/** The value after `flag` in an argument vector, or undefined when the flag is absent. */
const valueOf = (args: string[], flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);

describe('extension: run-setup form -> pas search arguments', () => {
  const defaults = defaultRunSetup({});

  it('a form left at its defaults gives the plain command a user would type', () => {
    assert.deepEqual(argsOf(defaults), [
      'search', MODEL, '--data', 'sample', '--target-macs', '0.5', '--search-epochs', '10', '--finetune-epochs', '10', '--backend', 'auto', '--out', OUT, '--json',
    ]);
  });

  it('every field reaches its option', () => {
    const cases: Array<{ change: Partial<RunSetup>; expect: Array<[string, string | undefined]> }> = [
      { change: { data: { kind: 'folder', dir: '/data/my images' } }, expect: [['--data', 'folder:/data/my images']] },
      { change: { data: { kind: 'idx', dir: '/usr/share/fmnist' } }, expect: [['--data', 'idx:/usr/share/fmnist']] },
      { change: { targetFraction: 0.3 }, expect: [['--target-macs', '0.3']] },
      { change: { pretrainEpochs: 0 }, expect: [['--pretrain-epochs', '0']] },
      { change: { searchEpochs: 3, finetuneEpochs: 0 }, expect: [['--search-epochs', '3'], ['--finetune-epochs', '0']] },
      { change: { batchSize: 16 }, expect: [['--batch-size', '16']] },
      { change: { minKeep: 0 }, expect: [['--min-keep', '0']] },
      { change: { minKeep: 0.25 }, expect: [['--min-keep', '0.25']] },
      { change: { roundTo: 8 }, expect: [['--round-to', '8']] },
      // 1 is no longer the default: a form set to "any width" must say so to the CLI.
      { change: { roundTo: 1 }, expect: [['--round-to', '1']] },
      { change: { keep: ['stem', 'head conv'] }, expect: [['--keep', 'stem,head conv']] },
      { change: { preprocessing: 'range-minus1-1' }, expect: [['--input-range', '-1,1'], ['--normalize', undefined]] },
      { change: { preprocessing: 'range-0-255' }, expect: [['--input-range', '0,255']] },
      { change: { preprocessing: 'imagenet' }, expect: [['--input-range', '0,1'], ['--normalize', '0.485,0.456,0.406,0.229,0.224,0.225']] },
    ];
    for (const c of cases) {
      const args = argsOf({ ...defaults, ...c.change });
      for (const [flag, value] of c.expect) assert.equal(valueOf(args, flag), value, `${JSON.stringify(c.change)}: ${flag} in ${args.join(' ')}`);
      assert.equal(args[args.length - 1], '--json');
    }
    assert.ok(argsOf({ ...defaults, distill: true }).includes('--distill'));
    assert.ok(!argsOf(defaults).includes('--distill'));
  });

  it('options at the CLI default are left out (so the command runs on a CLI without them)', () => {
    const args = argsOf({ ...defaults, batchSize: 64, minKeep: 0.1, roundTo: 'auto', keep: [], preprocessing: 'range-0-1', distill: false });
    for (const flag of ['--batch-size', '--min-keep', '--round-to', '--keep', '--input-range', '--normalize', '--distill']) assert.ok(!args.includes(flag), `${flag} in ${args.join(' ')}`);
  });

  it("the form's defaults are the CLI's (what the args builder leaves out must be what the CLI assumes)", () => {
    assert.equal(defaults.roundTo, 'auto');
    assert.equal(CLI_DEFAULTS.roundTo, DEFAULT_WIDTH_CONSTRAINTS.roundTo);
    assert.equal(CLI_DEFAULTS.minKeep, DEFAULT_WIDTH_CONSTRAINTS.minKeep);
    // The settings VS Code shows start from the same values.
    const settings = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')).contributes.configuration.properties;
    assert.equal(settings['pas.roundTo'].default, DEFAULT_WIDTH_CONSTRAINTS.roundTo);
    assert.equal(settings['pas.minKeep'].default, DEFAULT_WIDTH_CONSTRAINTS.minKeep);
    assert.equal(roundToSetting(settings['pas.roundTo'].default), 'auto');
  });

  it('the pas.roundTo setting: auto or a whole number from 1, anything else the default', () => {
    assert.equal(roundToSetting('auto'), 'auto');
    assert.equal(roundToSetting(8), 8);
    assert.equal(roundToSetting(1), 1);
    assert.equal(roundToSetting('8'), 8); // hand-edited settings.json
    for (const bad of [0, -8, 8.5, 'Auto', 'eight', '', true, null, undefined, {}]) assert.equal(roundToSetting(bad), undefined, JSON.stringify(bad));
    assert.equal(defaultRunSetup({ roundTo: roundToSetting(undefined) }).roundTo, 'auto');
    assert.equal(defaultRunSetup({ roundTo: roundToSetting(16) }).roundTo, 16);
    assert.deepEqual(valueOf(argsOf(defaultRunSetup({ roundTo: roundToSetting(16) })), '--round-to'), '16');
  });

  it('fractions are written as the CLI parses them back, without float noise', () => {
    assert.equal(valueOf(argsOf({ ...defaults, minKeep: 0.1 + 0.2 }), '--min-keep'), '0.3');
    assert.equal(valueOf(argsOf({ ...defaults, minKeep: 1e-7 }), '--min-keep'), '1e-7');
  });

  it('refuses values no form should produce', () => {
    assert.throws(() => argsOf({ ...defaults, roundTo: 0 }), RangeError);
    assert.throws(() => argsOf({ ...defaults, roundTo: 2.5 }), RangeError);
    assert.throws(() => argsOf({ ...defaults, minKeep: 1 }), RangeError);
    assert.throws(() => argsOf({ ...defaults, keep: ['a,b'] }), RangeError);
    assert.throws(() => argsOf({ ...defaults, batchSize: 2.5 }), RangeError);
  });
});

describe('extension: run-setup validation and defaults', () => {
  const good = defaultRunSetup({});

  it('accepts --round-to auto, 1 and 256', () => {
    for (const roundTo of ['auto', 1, 8, 256]) assert.ok(validateRunSetup({ ...good, roundTo }).ok, String(roundTo));
  });

  it('accepts the defaults and returns a clean copy', () => {
    const v = validateRunSetup({ ...good, keep: ['a', 'a'] }, ['a', 'b']);
    assert.ok(v.ok);
    if (v.ok) assert.deepEqual(v.setup.keep, ['a']);
  });

  it('names each bad field (what a webview could post)', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ targetFraction: 1 }, 'targetFraction'],
      [{ targetFraction: null }, 'targetFraction'], // NaN from an empty field arrives as null
      [{ targetFraction: '0.5' }, 'targetFraction'],
      [{ searchEpochs: 0 }, 'searchEpochs'],
      [{ finetuneEpochs: 1.5 }, 'finetuneEpochs'],
      [{ pretrainEpochs: -1 }, 'pretrainEpochs'],
      [{ batchSize: 0 }, 'batchSize'],
      [{ minKeep: 1 }, 'minKeep'],
      [{ minKeep: -0.1 }, 'minKeep'],
      [{ roundTo: 0 }, 'roundTo'],
      [{ roundTo: 257 }, 'roundTo'],
      [{ roundTo: 'Auto' }, 'roundTo'],
      [{ roundTo: '8' }, 'roundTo'],
      [{ roundTo: null }, 'roundTo'], // NaN from "eight" in the field arrives as null
      [{ keep: 'a' }, 'keep'],
      [{ keep: ['x'] }, 'keep'],
      [{ keep: ['a', 'b'] }, 'keep'], // nothing left to prune
      [{ preprocessing: 'bgr' }, 'preprocessing'],
      [{ distill: 'yes' }, 'distill'],
      [{ data: { kind: 'folder', dir: '' } }, 'data'],
      [{ data: { kind: 'folder', dir: '/x\n/y' } }, 'data'],
      [{ data: { kind: 'url', dir: 'http://x' } }, 'data'],
      [{ data: { kind: 'sample', dir: '/etc' } }, 'data'],
      [{ command: 'rm -rf /' }, 'data'],
    ];
    for (const [change, field] of bad) {
      const v = validateRunSetup({ ...good, ...change }, ['a', 'b']);
      assert.ok(!v.ok, JSON.stringify(change));
      if (!v.ok) assert.ok(field in v.errors, `${JSON.stringify(change)}: errors ${JSON.stringify(v.errors)}`);
    }
    assert.equal(validateRunSetup(null).ok, false);
    assert.equal(validateRunSetup([]).ok, false);
  });

  it('starts from the last run on the model, then the settings, then the CLI defaults', () => {
    const settings = { targetFraction: 0.4, searchEpochs: 3, minKeep: 0.2, preprocessing: 'range-0-255' as const };
    const fromSettings = defaultRunSetup(settings);
    assert.equal(fromSettings.targetFraction, 0.4);
    assert.equal(fromSettings.minKeep, 0.2);
    assert.equal(fromSettings.batchSize, 64);
    const fromLast = defaultRunSetup(settings, { targetFraction: 0.3, keep: ['a'], preprocessing: 'imagenet' });
    assert.equal(fromLast.targetFraction, 0.3);
    assert.equal(fromLast.searchEpochs, 3);
    assert.deepEqual(fromLast.keep, ['a']);
    assert.equal(fromLast.preprocessing, 'imagenet');
    // a remembered value that no longer validates falls back, the rest is kept
    const stale = defaultRunSetup(settings, { targetFraction: 7, searchEpochs: 5 });
    assert.equal(stale.targetFraction, 0.4);
    assert.equal(stale.searchEpochs, 5);
  });

  it('the host accepts the form messages and refuses malformed ones', () => {
    for (const m of [{ type: 'setupChanged', setup: {} }, { type: 'startRun', setup: { a: 1 } }, { type: 'browseData', kind: 'idx' }, { type: 'browseData', kind: 'folder' }]) {
      const v = validateWebviewMessage(m);
      assert.ok(v.ok, JSON.stringify(m));
    }
    for (const m of [{ type: 'startRun' }, { type: 'startRun', setup: 'x' }, { type: 'startRun', setup: [] }, { type: 'startRun', setup: {}, path: '/x' }, { type: 'browseData', kind: 'file' }, { type: 'browseData', kind: 'idx', path: '/' }]) {
      assert.equal(validateWebviewMessage(m).ok, false, JSON.stringify(m));
    }
  });
});

describe('engine: budget preview from the inspect report', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  const models = [
    { label: 'RepVGG (fused blocks)', build: () => buildRepVgg({ variant: 'A0', inputShape: [32, 32, 3], numClasses: 5, widthMultiplier: 0.25, blocksPerStage: [1, 2, 2, 2, 1], seed: 3 }) },
    { label: 'residual CNN (coupled groups, depthwise)', build: () => buildResidualCnn({ inputShape: [16, 16, 3], numClasses: 4, widthMultiplier: 0.5 }) },
  ];

  for (const { label, build } of models) {
    it(`${label}: the reported formula gives the MACs of the actually pruned deployed model`, () => {
      const model = build();
      const graph = graphFromModel(model);
      model.dispose();
      const report = inspectGraph(graph, 'test', [1, 1, 1], 2);
      assert.ok(report.macsFormula && report.macsFormula.length > 0);
      assert.equal(evaluateMacsTerms(report.macsFormula, new Map(), new Map(report.prunableGroups.map((g) => [g.name, g.width]))), report.deployedForm.totalMacs);
      for (let seed = 1; seed <= 3; seed++) {
        const { graph: masked } = randomlyMasked(graph, seed, 0.5);
        const analysis = analyzeGraph(masked);
        const nameOf = new Map(prunableGroups(analysis).map((g) => [g.id, g.name]));
        const kept = keptChannelsFromMasks(masked, analysis);
        const counts = new Map([...kept].map(([id, channels]) => [nameOf.get(id)!, channels.length]));
        const deployedMacs = summarizeGraph(reparameterizeGraph(pruneGraph(masked, kept))).totalMacs;
        const formulaMacs = evaluateMacsTerms(report.macsFormula, counts, new Map(report.prunableGroups.map((g) => [g.name, g.width])));
        assert.ok(Math.abs(formulaMacs - deployedMacs) <= 1e-9 * deployedMacs, `seed ${seed}: formula ${formulaMacs} vs pruned ${deployedMacs}`);
      }
      // Without constraints the lowest reachable MACs is the engine's own floor (one channel per group).
      const budget = new MacsBudget(randomlyMasked(graph, 9).graph, maskLayoutOf(randomlyMasked(graph, 9).graph));
      const unconstrained = previewBudget(report.macsFormula, report.prunableGroups, NO_WIDTH_CONSTRAINTS, 0.5);
      assert.ok(Math.abs(unconstrained.lowestMacs - budget.minimumMacs) <= 1e-9 * budget.minimumMacs, `${unconstrained.lowestMacs} vs ${budget.minimumMacs}`);
      // Constraints only raise the floor; keeping every group makes every target unreachable.
      const constrained = previewBudget(report.macsFormula, report.prunableGroups, { minKeep: 0.5, roundTo: 4, keep: [report.prunableGroups[0].name] }, 0.5);
      assert.ok(constrained.lowestFraction > unconstrained.lowestFraction);
      const all = previewBudget(report.macsFormula, report.prunableGroups, { minKeep: 0, roundTo: 1, keep: report.prunableGroups.map((g) => g.name) }, 0.99);
      assert.equal(all.lowestFraction, 1);
      assert.equal(all.reachable, false);
    });
  }

  it('the preview under --round-to auto gives the floors of the engine\'s lattice (groups of 48 to 1280 channels)', () => {
    const model = buildRepVgg({ variant: 'A0', inputShape: [32, 32, 3], numClasses: 5, widthMultiplier: 1, blocksPerStage: [1, 1, 1, 1, 1], seed: 3 });
    const graph = graphFromModel(model);
    model.dispose();
    const report = inspectGraph(graph, 'test', [1, 1, 1], 2);
    const budget = MacsBudget.forUnmaskedGraph(graph);
    const widths = budget.groups.map((g) => g.width);
    assert.ok(widths.some((w) => w < 64) && widths.some((w) => w >= 64 && w % 8 === 0), `widths ${widths.join(', ')}`);
    for (const minKeep of [0, 0.1, 0.3]) {
      const constraints = { ...DEFAULT_WIDTH_CONSTRAINTS, minKeep };
      const lattice = new WidthLattice(budget.groups, constraints);
      const preview = previewBudget(report.macsFormula!, report.prunableGroups, constraints, 0.5);
      const engineLowest = budget.macsOf(lattice.floors());
      assert.ok(Math.abs(preview.lowestMacs - engineLowest) <= 1e-9 * engineLowest, `min-keep ${minKeep}: preview ${preview.lowestMacs} vs engine ${engineLowest}`);
      for (const g of report.prunableGroups) {
        const id = budget.groups.find((b) => b.name === g.name)!.id;
        assert.equal(lowestKeptCount(g.name, g.width, constraints), lattice.floor(id), `${g.name} (${g.width})`);
      }
    }
    // min-keep 0.1: the 1280-wide head's floor 128 is a multiple of 8 anyway, the 96- and 192-wide groups round 10 -> 16 and 20 -> 24: auto raises the floor above --round-to 1's.
    const anyWidth = previewBudget(report.macsFormula!, report.prunableGroups, { ...DEFAULT_WIDTH_CONSTRAINTS, roundTo: 1 }, 0.5);
    assert.ok(previewBudget(report.macsFormula!, report.prunableGroups, DEFAULT_WIDTH_CONSTRAINTS, 0.5).lowestMacs > anyWidth.lowestMacs);
  });

  it('lowest kept counts respect min-keep, round-to and keep', () => {
    const random = mulberry32(17);
    for (let i = 0; i < 2000; i++) {
      const width = 1 + Math.floor(random() * 300);
      const minKeep = random() < 0.2 ? 0 : random() * 0.9;
      const roundTo = ([1, 2, 4, 8, 16, 32, 'auto'] as RoundTo[])[Math.floor(random() * 7)];
      // the step as documented: N, or under auto 8 from 64 channels and 1 below
      const step = roundTo === 'auto' ? (width >= 64 ? 8 : 1) : roundTo;
      const count = lowestKeptCount('g', width, { minKeep, roundTo, keep: [] });
      const label = `width ${width}, min-keep ${minKeep}, round-to ${roundTo}: ${count}`;
      assert.ok(Number.isInteger(count) && count >= 1 && count <= width, label);
      assert.ok(count >= Math.ceil(minKeep * width - 1e-9), label);
      if (width >= step) assert.ok(count % step === 0 || count === width, label);
      // the smallest such count: one step lower breaks a rule
      if (count > 1 && count < width) {
        const lower = step > 1 && width >= step ? count - step : count - 1;
        assert.ok(lower < Math.max(1, Math.ceil(minKeep * width - 1e-9)), label);
      }
      assert.equal(lowestKeptCount('g', width, { minKeep, roundTo, keep: ['g'] }), width);
    }
    assert.equal(lowestKeptCount('g', 32, { minKeep: 0.1, roundTo: 1, keep: [] }), 4); // ceil(3.2)
    assert.equal(lowestKeptCount('g', 5, { minKeep: 0, roundTo: 1, keep: [] }), 1);
  });
});

describe('shared count formatter', () => {
  it('one unit system everywhere', () => {
    assert.equal(formatCount(1_360_000_000), '1.36G');
    assert.equal(formatCount(12_500_000), '12.50M');
    assert.equal(formatCount(646_900), '646.9K');
    assert.equal(formatCount(538), '538');
    assert.equal(formatCount(-2_000), '-2.0K');
    assert.equal(formatCount(Number.NaN), '–');
    assert.equal(formatPercent(0.4937), '49.4%');
  });
});

describe('extension: Disposable base', () => {
  class Owner extends Disposable {
    add(d: { dispose(): void }) {
      return this._register(d);
    }
  }

  it('disposes what it registered once, newest first, and at once after its own disposal', () => {
    const order: string[] = [];
    const owner = new Owner();
    owner.add({ dispose: () => order.push('a') });
    owner.add({ dispose: () => order.push('b') });
    owner.dispose();
    owner.dispose();
    assert.deepEqual(order, ['b', 'a']);
    owner.add({ dispose: () => order.push('late') });
    assert.deepEqual(order, ['b', 'a', 'late']);
  });
});
