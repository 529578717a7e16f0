import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { DoneEvent, EpochEvent, SearchReport } from '../../src/shared/workerProtocol';
import { fingerprintFolder, makeTempDir, parseEvents, runCli, runCliAndKill } from '../support/cli';

/** A small but real task: the default RepVGG on a slice of the bundled Fashion-MNIST sample. */
const SMALL_RUN = ['--data', 'sample', '--max-train', '320', '--max-test', '100', '--batch-size', '32', '--seed', '5', '--backend', 'wasm'];

function doneReport(stdout: string): SearchReport {
  const done = parseEvents(stdout).find((e) => e.type === 'done') as DoneEvent | undefined;
  assert.ok(done?.report, `no done event with a report in:\n${stdout.slice(-2000)}`);
  return done.report;
}

describe('pas search (the whole job, CLI)', function () {
  this.timeout(600_000);
  let work: string;
  let modelDir: string;
  let uninterrupted: SearchReport;

  before(() => {
    work = makeTempDir('pas-search-');
    modelDir = path.join(work, 'user-model');
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('reaches the MACs target within 3% and the deployed model scores what the fine-tuned masked model scores', () => {
    const out = path.join(work, 'run-a');
    const result = runCli(['search', 'builtin:default', '--target-macs', '0.5', '--pretrain-epochs', '1', '--search-epochs', '2', '--finetune-epochs', '1', '--out', out, '--json', ...SMALL_RUN]);
    assert.equal(result.status, 0, result.stderr.slice(-3000));
    uninterrupted = doneReport(result.stdout);
    // Every epoch reports the params its masks deploy: unpruned while pretraining, then the
    // pruned deployed model's, which the last fine-tuning epoch shares with the report.
    const epochs = parseEvents(result.stdout).filter((e): e is EpochEvent => e.type === 'epoch');
    const pretrain = epochs.filter((e) => e.phase === 'pretrain');
    assert.ok(pretrain.length > 0 && pretrain.every((e) => e.params === uninterrupted.paramsBefore), `pretrain params ${pretrain.map((e) => e.params)} vs ${uninterrupted.paramsBefore}`);
    assert.equal(epochs[epochs.length - 1].phase, 'finetune');
    assert.equal(epochs[epochs.length - 1].params, uninterrupted.paramsAfter);
    assert.ok(epochs.every((e) => e.params > 0 && e.params <= uninterrupted.paramsBefore));
    const ratio = uninterrupted.macsAfter / uninterrupted.targetMacs;
    assert.ok(Math.abs(ratio - 1) <= 0.03, `MACs after ${uninterrupted.macsAfter} vs target ${uninterrupted.targetMacs} (ratio ${ratio})`);
    assert.ok(uninterrupted.macsAfter < uninterrupted.macsBefore);
    // Reparameterization changes nothing: one test image at most may flip on a float tie.
    assert.ok(Math.abs(uninterrupted.accuracyAfter - uninterrupted.accuracyMasked) <= 1 / 100, `${uninterrupted.accuracyAfter} vs ${uninterrupted.accuracyMasked}`);
    assert.ok(uninterrupted.reparamMaxAbsDiff <= 1e-4);
    for (const file of ['report.json', 'deployed/model.json', 'deployed/weights.bin', 'searched/model.json']) {
      assert.ok(fs.existsSync(path.join(out, file)), `missing ${file}`);
    }
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    for (const key of ['macsBefore', 'macsAfter', 'targetMacs', 'accuracyBefore', 'accuracyAfter', 'deployedModel', 'layers']) assert.ok(key in report, `report.json lacks ${key}`);
    assert.ok(report.layers.every((l: any) => typeof l.name === 'string' && l.searchedWidth >= 1 && l.searchedWidth <= l.originalWidth));
    // The deployed model on disk is what report.json says: inspect it.
    const inspected = runCli(['inspect', report.deployedModel, '--json']);
    assert.equal(inspected.status, 0, inspected.stderr);
    const inspect = parseEvents(inspected.stdout).find((e) => e.type === 'inspect') as any;
    assert.equal(inspect.report.deployedForm.totalMacs, report.macsAfter);
  });

  it('resumes a run killed with SIGKILL and ends with the same widths as the uninterrupted run', async () => {
    assert.ok(uninterrupted, 'needs the uninterrupted run of the previous test');
    const out = path.join(work, 'run-b');
    const args = ['search', 'builtin:default', '--target-macs', '0.5', '--pretrain-epochs', '1', '--search-epochs', '2', '--finetune-epochs', '1', '--out', out, '--json', ...SMALL_RUN];
    // Killed in the middle of the search, right after its first epoch's checkpoint.
    const first = await runCliAndKill(args, (e) => e.type === 'batch' && e.phase === 'search' && (e as any).epoch === 2);
    assert.ok(first.killed, 'the run ended before it could be killed');
    assert.ok(first.events.some((e) => e.type === 'epoch' && (e as EpochEvent).phase === 'search'));
    const resumed = runCli(['search', '--resume', out, '--json', '--backend', 'wasm']);
    assert.equal(resumed.status, 0, resumed.stderr.slice(-3000));
    const events = parseEvents(resumed.stdout);
    // It continued: no pretraining again, search epoch 2 onwards.
    assert.ok(!events.some((e) => e.type === 'epoch' && (e as EpochEvent).phase === 'pretrain'), 'pretraining ran again');
    const report = doneReport(resumed.stdout);
    assert.deepEqual(report.layers.map((l) => l.searchedWidth), uninterrupted.layers.map((l) => l.searchedWidth));
    assert.equal(report.macsAfter, uninterrupted.macsAfter);
  });

  it('stops within one batch on SIGINT, keeps its last checkpoint and resumes from it', async () => {
    const out = path.join(work, 'run-c');
    const args = ['search', 'builtin:default', '--target-macs', '0.5', '--pretrain-epochs', '1', '--search-epochs', '1', '--finetune-epochs', '1', '--out', out, '--json', ...SMALL_RUN];
    let batchesAfterSignal = 0;
    let signalled = false;
    const run = await runCliAndKill(args, (e) => {
      if (signalled && e.type === 'batch') batchesAfterSignal++;
      if (!signalled && e.type === 'batch' && e.phase === 'search') return (signalled = true);
      return false;
    }, 'SIGINT');
    assert.equal(run.exitCode, 130, run.stderr.slice(-2000));
    const cancelled = run.events.find((e) => e.type === 'cancelled') as any;
    assert.ok(cancelled?.checkpoint && fs.existsSync(path.join(cancelled.checkpoint, 'model.json')), 'the cancelled event names a complete checkpoint');
    // Within one batch: the search epoch the signal interrupted never finished (it has 10 batches).
    assert.ok(batchesAfterSignal <= 1, `${batchesAfterSignal} batch events after the signal`);
    assert.ok(!run.events.some((e) => e.type === 'epoch' && (e as EpochEvent).phase === 'search'), 'the search epoch ran to its end');
    assert.match(cancelled.checkpoint, /search-000$/);
    const resumed = runCli(['search', '--resume', out, '--json', '--backend', 'wasm']);
    assert.equal(resumed.status, 0, resumed.stderr.slice(-2000));
    assert.ok(parseEvents(resumed.stdout).some((e) => e.type === 'done'));
  });

  it('starts again in a folder that holds only what a run killed before its first checkpoint left', () => {
    const out = path.join(work, 'run-d');
    fs.mkdirSync(path.join(out, 'checkpoints', 'pretrain-001.tmp-99999-abc'), { recursive: true });
    fs.writeFileSync(path.join(out, 'checkpoints', 'pretrain-001.tmp-99999-abc', 'model.json'), '{"half": ');
    fs.writeFileSync(path.join(out, '.lock'), '999999999\n'); // A pid that is not alive.
    const result = runCli(['search', 'builtin:default', '--pretrain-epochs', '1', '--search-epochs', '1', '--finetune-epochs', '1', '--out', out, '--json', ...SMALL_RUN]);
    assert.equal(result.status, 0, result.stderr.slice(-2000));
    assert.ok(!fs.readdirSync(path.join(out, 'checkpoints')).some((e) => e.includes('.tmp-')), 'temp leftovers are removed');
    // A folder with somebody's file in it is still refused.
    const foreign = path.join(work, 'run-e');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    const refused = runCli(['search', 'builtin:default', '--out', foreign, ...SMALL_RUN]);
    assert.equal(refused.status, 2);
    assert.equal(fs.readFileSync(path.join(foreign, 'notes.txt'), 'utf8'), 'mine');
  });

  it('never modifies its input files and writes next to the model folder, not into it', () => {
    // A model file of the user's: a deployed plain CNN written by the CLI.
    const made = runCli(['reparam', 'builtin:plain-cnn', '--width-multiplier', '0.5', '--out', modelDir]);
    assert.equal(made.status, 0, made.stderr);
    const before = fingerprintFolder(modelDir);
    const result = runCli(['search', path.join(modelDir, 'model.json'), '--pretrain-epochs', '0', '--search-epochs', '1', '--finetune-epochs', '1', '--target-macs', '0.6', '--json', ...SMALL_RUN]);
    assert.equal(result.status, 0, result.stderr.slice(-3000));
    assert.deepEqual(fingerprintFolder(modelDir), before);
    const done = parseEvents(result.stdout).find((e) => e.type === 'done') as DoneEvent;
    assert.equal(path.dirname(done.outputDir!), path.dirname(modelDir), 'the output folder is a sibling of the model folder');
    assert.ok(!done.outputDir!.startsWith(modelDir + path.sep));
  });
});
