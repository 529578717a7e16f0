// Compare with baselines: the engine's plan and runner (equal epochs from the method table,
// compare.json's shape, nothing written when a run is cancelled or fails), and the extension's
// CompareRun against test/fixtures/fake-worker.js (one worker after another, cancel).
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { COMPARE_FILE, comparePlan, type CompareReport, runComparison, type CompareStep, type StepOutcome } from '../../src/engine/compare/compare';
import { methodSearches, PRUNE_METHOD_NAMES } from '../../src/engine/search/methods';
import { CompareRun, type FinishedRun } from '../../src/extension/core/compareRun';
import { chooseSiblingDir } from '../../src/extension/core/outputNaming';
import { validateWebviewMessage } from '../../src/extension/core/webviewMessages';
import { startWorker } from '../../src/extension/core/workerRunner';
import type { CompareState } from '../../src/shared/webviewProtocol';
import type { PruneMethod, SearchReport } from '../../src/shared/workerProtocol';

const FAKE = path.join(__dirname, '..', 'fixtures', 'fake-worker.js');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'pas-compare-'));
}

/** A report of one run; the widths and numbers differ per method so rows cannot be confused. */
function report(method: PruneMethod, search: number, finetune: number): SearchReport {
  const w = { pas: 5, uniform: 4, magnitude: 3 }[method];
  return {
    method, modelPath: '/m/model.json', dataSpec: 'sample', backend: 'cpu', seed: 7, targetFraction: 0.5, targetMacs: 500,
    macsBefore: 1000, macsAfter: 400 + w, paramsBefore: 100, paramsAfter: 50 + w, accuracyBefore: 0.9, accuracyAfter: 0.8 + w / 100,
    accuracyMasked: 0.8, reparamMaxAbsDiff: 0, epochs: { pretrain: 0, search, finetune }, wallSeconds: w, deployedModel: 'd', searchedCheckpoint: 's',
    layers: [{ name: 'a', originalWidth: 8, searchedWidth: w }, { name: 'b', originalWidth: 16, searchedWidth: 2 * w }],
    latencyBefore: 1, latencyAfter: w / 10,
  };
}

describe('compare: engine plan and runner', () => {
  it('every method trains its weights for the same epochs; only a searching method (per the method table) has search epochs', () => {
    const steps = comparePlan('/out', 3, 5);
    assert.deepEqual(steps.map((s) => s.method), PRUNE_METHOD_NAMES);
    for (const step of steps) {
      assert.equal(step.searchEpochs + step.finetuneEpochs, 8, step.method);
      assert.equal(step.searchEpochs, methodSearches(step.method) ? 3 : 0, step.method);
      assert.equal(step.outputDir, path.join('/out', step.method));
    }
    assert.deepEqual(comparePlan('/out', 2, 1, ['magnitude']).map((s) => [s.method, s.searchEpochs, s.finetuneEpochs]), [['magnitude', 0, 3]]);
  });

  it('writes compare.json with one row per run, in order, each with its own widths, MACs, params and latency', async () => {
    const dir = tempDir();
    const steps = comparePlan(dir, 2, 1);
    const outcome = await runComparison(dir, steps, { runOne: async (s) => ({ kind: 'done', report: report(s.method, s.searchEpochs, s.finetuneEpochs) }) });
    if (outcome.kind !== 'done') return assert.fail(`comparison ended ${outcome.kind}`);
    const written: CompareReport = JSON.parse(fs.readFileSync(path.join(dir, COMPARE_FILE), 'utf8'));
    assert.deepEqual(written, outcome.compare);
    assert.deepEqual(Object.keys(written).sort(), ['accuracyBefore', 'data', 'latencyBefore', 'macsBefore', 'model', 'paramsBefore', 'rows', 'seed', 'targetFraction']);
    assert.deepEqual(written.rows.map((r) => r.method), PRUNE_METHOD_NAMES);
    for (const row of written.rows) {
      const r = report(row.method, row.epochs.search, row.epochs.finetune);
      assert.equal(row.outputDir, path.join(dir, row.method));
      assert.deepEqual(row.widths, r.layers.map((l) => ({ name: l.name, originalWidth: l.originalWidth, width: l.searchedWidth })));
      assert.equal(row.macs, r.macsAfter);
      assert.equal(row.macsFraction, r.macsAfter / r.macsBefore);
      assert.equal(row.params, r.paramsAfter);
      assert.equal(row.latencyMs, r.latencyAfter);
      assert.equal(row.epochs.search + row.epochs.finetune, 3);
    }
    // the atomic write leaves only the file itself
    assert.deepEqual(fs.readdirSync(dir), [COMPARE_FILE]);
  });

  for (const ending of ['cancelled', 'failed'] as const) {
    it(`a ${ending} run stops the comparison: the next run never starts and no compare.json is written`, async () => {
      const dir = tempDir();
      const started: string[] = [];
      const outcome = await runComparison(dir, comparePlan(dir, 1, 1), {
        runOne: async (s: CompareStep): Promise<StepOutcome> => {
          started.push(s.method);
          if (s.method === 'uniform') return ending === 'cancelled' ? { kind: 'cancelled' } : { kind: 'failed', reason: 'exit code 2' };
          return { kind: 'done', report: report(s.method, s.searchEpochs, s.finetuneEpochs) };
        },
      });
      assert.equal(outcome.kind, ending);
      assert.deepEqual(started, ['pas', 'uniform']);
      assert.equal(fs.existsSync(path.join(dir, COMPARE_FILE)), false);
      assert.deepEqual(fs.readdirSync(dir), []);
    });
  }

  it('a cancel between runs starts no further run', async () => {
    const dir = tempDir();
    let cancel = false;
    const started: string[] = [];
    const outcome = await runComparison(dir, comparePlan(dir, 1, 1), {
      cancelled: () => cancel,
      runOne: async (s) => {
        started.push(s.method);
        cancel = true; // pressed while this run was finishing
        return { kind: 'done', report: report(s.method, s.searchEpochs, s.finetuneEpochs) };
      },
    });
    assert.equal(outcome.kind, 'cancelled');
    assert.deepEqual(started, ['pas']);
    assert.equal(fs.existsSync(path.join(dir, COMPARE_FILE)), false);
  });
});

describe('compare: the extension host runs the baselines as workers (fake worker)', function () {
  this.timeout(30_000);

  function finishedRun(dir: string): FinishedRun {
    const pasDir = path.join(dir, 'net-pas');
    return {
      options: { model: '/ws/net/model.json', data: { kind: 'idx', dir: '/data' }, targetFraction: 0.4, searchEpochs: 2, finetuneEpochs: 3, backend: 'cpu', outDir: pasDir, resume: pasDir, minKeep: 0.2 },
      report: { ...report('pas', 2, 3), seed: 11, targetFraction: 0.4, epochs: { pretrain: 1, search: 2, finetune: 3 } },
      outputDir: pasDir,
    };
  }

  /** Starts fake workers; `waitFor` methods run until cancelled. Records each command line and overlap. */
  function fakeStarter(waitFor: PruneMethod[] = []) {
    const launched: string[][] = [];
    let running = 0;
    let maxRunning = 0;
    const start = (args: string[], callbacks: Parameters<typeof startWorker>[1]) => {
      launched.push(args);
      const method = args[args.indexOf('--method') + 1] as PruneMethod;
      const run = startWorker({ executable: process.execPath, args: [FAKE, waitFor.includes(method) ? 'search-report-wait' : 'search-report', ...args], cancelGraceMs: 5000 }, callbacks);
      maxRunning = Math.max(maxRunning, ++running);
      void run.outcome.then(() => running--);
      return run;
    };
    return { start, launched, maxRunning: () => maxRunning };
  }

  it('runs each baseline once, one after another, with the run\'s model, data, target, seed and equal epochs, then writes compare.json with three rows', async () => {
    const dir = tempDir();
    const finished = finishedRun(dir);
    const compareDir = path.join(dir, 'net-pas-compare');
    const fake = fakeStarter();
    const states: CompareState[] = [];
    const final = await new CompareRun(finished, compareDir, fake.start, (s) => states.push(s)).run();
    assert.equal(final.status, 'done', final.failure);
    assert.equal(fake.maxRunning(), 1);
    assert.deepEqual(fake.launched.map((a) => a[a.indexOf('--method') + 1]), ['uniform', 'magnitude']);
    for (const args of fake.launched) {
      const method = args[args.indexOf('--method') + 1];
      const value = (flag: string) => args[args.indexOf(flag) + 1];
      assert.equal(args[1], '/ws/net/model.json');
      assert.equal(value('--data'), 'idx:/data');
      assert.equal(value('--target-macs'), '0.4');
      assert.equal(value('--seed'), '11');
      assert.equal(value('--pretrain-epochs'), '1');
      assert.equal(value('--min-keep'), '0.2');
      assert.equal(value('--search-epochs'), '0');
      assert.equal(value('--finetune-epochs'), '5');
      assert.equal(value('--out'), path.join(compareDir, method));
      assert.ok(!args.includes('--resume'), 'a baseline is a fresh run, not a resume of the PaS run');
    }
    const written: CompareReport = JSON.parse(fs.readFileSync(path.join(compareDir, COMPARE_FILE), 'utf8'));
    assert.deepEqual(written, final.compare!);
    assert.deepEqual(written.rows.map((r) => r.method), ['pas', 'uniform', 'magnitude']);
    assert.equal(written.rows[0].outputDir, finished.outputDir);
    // each row carries its own run's widths (the fake worker's differ per method)
    assert.deepEqual(written.rows.map((r) => r.widths.map((w) => w.width)), [[5, 10], [8, 16], [14, 10]]);
    // progress: each baseline was shown running before it was done, and never two at once
    assert.ok(states.some((s) => s.methods[1].state === 'running' && s.methods[2].state === 'waiting'));
    assert.ok(states.some((s) => s.methods[1].state === 'done' && s.methods[2].state === 'running'));
    assert.ok(states.every((s) => s.methods.filter((m) => m.state === 'running').length <= 1));
  });

  it('cancel stops the running baseline and does not start the next; no compare.json', async () => {
    const dir = tempDir();
    const compareDir = path.join(dir, 'net-pas-compare');
    const fake = fakeStarter(['uniform', 'magnitude']);
    let compare!: CompareRun;
    let cancelled = false;
    compare = new CompareRun(finishedRun(dir), compareDir, fake.start, (s) => {
      // cancel once the first baseline's worker reports progress
      if (!cancelled && s.methods[1].state === 'running' && /batch/.test(s.methods[1].detail ?? '')) {
        cancelled = true;
        compare.cancel();
      }
    });
    const final = await compare.run();
    assert.equal(final.status, 'cancelled');
    assert.equal(fake.launched.length, 1);
    assert.deepEqual(final.methods.map((m) => m.state), ['done', 'cancelled', 'cancelled']);
    assert.equal(fs.existsSync(path.join(compareDir, COMPARE_FILE)), false);
  });
});

describe('compare: host-side helpers', () => {
  it('the comparison folder is a new folder beside the run, never the run itself or an existing one', () => {
    const taken = new Set([path.resolve('/ws/net-pas-compare')]);
    assert.equal(chooseSiblingDir('/ws/net-pas', 'compare', (p) => taken.has(p)), path.resolve('/ws/net-pas-compare-2'));
    assert.equal(chooseSiblingDir('/ws/net-pas/', 'compare', () => false), path.resolve('/ws/net-pas-compare'));
  });

  it('the panel may ask to compare and to cancel the comparison, with no extra fields', () => {
    for (const type of ['compareBaselines', 'cancelCompare'] as const) {
      assert.deepEqual(validateWebviewMessage({ type }), { ok: true, message: { type } });
      assert.equal(validateWebviewMessage({ type, dir: '/etc' }).ok, false);
    }
  });
});
