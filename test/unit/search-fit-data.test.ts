/**
 * Issue 16: a builtin follows the data's class count and input shape unless --classes/--input say
 * otherwise; any other mismatch of model and data is refused with exit 2 before training, one
 * line naming both counts and the data set - never an "internal error" from inside the loss.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { initBackend } from '../../src/engine/backends';
import { isPasInputError } from '../../src/engine/errors';
import { saveLayersModelToDir } from '../../src/engine/io';
import { fitBuiltinToData } from '../../src/engine/search/fitToData';
import { prepareRun } from '../../src/engine/search/job';
import type { RunSettings } from '../../src/engine/search/runState';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { buildSearchArgs } from '../../src/extension/core/cliArgs';
import { startWorker } from '../../src/extension/core/workerRunner';
import { CLI, makeTempDir, parseEvents, runCli } from '../support/cli';
import { makeClassFolder } from '../support/imageFolders';
import { mulberry32 } from '../support/tensors';

const TRIAL = ['--pretrain-epochs', '0', '--search-epochs', '1', '--finetune-epochs', '0', '--batch-size', '4', '--max-steps', '1', '--backend', 'wasm'];

function settingsFor(modelSpec: string, dataSpec: string, builtinOptions: RunSettings['builtinOptions'] = {}): RunSettings {
  return {
    modelSpec, builtinOptions, dataSpec, targetFraction: 0.5, method: 'pas', pretrainEpochs: 0, searchEpochs: 1, finetuneEpochs: 0,
    batchSize: 4, seed: 1, alpha: 8, learningRates: { pretrain: 0.1, search: 0.02, finetune: 0.02 },
  };
}

describe('model and data of different class counts (issue 16)', function () {
  this.timeout(300_000);
  let root: string;
  const folders = new Map<number, string>();
  const folderWith = (classes: number) => {
    if (!folders.has(classes)) folders.set(classes, makeClassFolder(path.join(root, `data${classes}`), classes, 3, 8));
    return folders.get(classes)!;
  };

  before(async () => {
    root = makeTempDir('pas-fit-data-');
    await initBackend('wasm');
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('property: for random class counts, a builtin without --classes always fits; with --classes it fits exactly when the counts agree', async () => {
    const random = mulberry32(16);
    for (let trial = 0; trial < 8; trial++) {
      const dataClasses = 2 + Math.floor(random() * 5);
      const modelClasses = 2 + Math.floor(random() * 5);
      const data = `folder:${folderWith(dataClasses)}`;
      const fitted = await fitBuiltinToData(settingsFor('builtin:plain-cnn', data));
      assert.strictEqual(fitted.settings.builtinOptions.numClasses, dataClasses);
      assert.deepStrictEqual(fitted.settings.builtinOptions.inputShape, [8, 8, 1]);
      assert.ok(fitted.notes.some((n) => n.startsWith(`classes: ${dataClasses} (from the data`)), fitted.notes.join('; '));
      const followed = await prepareRun(fitted.settings);
      followed.model.dispose();

      const given = await fitBuiltinToData(settingsFor('builtin:plain-cnn', data, { numClasses: modelClasses }));
      const attempt = prepareRun(given.settings);
      if (dataClasses === modelClasses) {
        (await attempt).model.dispose();
      } else {
        await assert.rejects(attempt, (error: unknown) => {
          assert.ok(isPasInputError(error), `a PasInputError, not ${error}`);
          assert.match((error as Error).message, new RegExp(`has ${dataClasses} classes but the model's classifier has ${modelClasses} outputs`));
          assert.strictEqual((error as { file?: string }).file, data);
          return true;
        });
      }
    }
  });

  it('CLI: builtin:plain-cnn on a 2-class folder takes 2 classes and the data shape, says so, and runs', () => {
    const out = path.join(root, 'builtin-run');
    const result = runCli(['search', 'builtin:plain-cnn', '--data', `folder:${folderWith(2)}`, '--out', out, ...TRIAL], { timeoutMs: 240_000 });
    assert.strictEqual(result.status, 0, result.stderr);
    assert.match(result.stderr, /classes: 2 \(from the data folder:/);
    assert.match(result.stderr, /input: 8x8x1 \(from the data folder:/);
    assert.ok(fs.existsSync(path.join(out, 'deployed', 'model.json')));
  });

  it('CLI: a different --classes, and a model file of another output width, exit 2 before anything is written', async () => {
    const data = `folder:${folderWith(2)}`;
    const out = path.join(root, 'refused');
    const builtin = runCli(['search', 'builtin:plain-cnn', '--classes', '10', '--data', data, '--out', out, ...TRIAL]);
    assert.strictEqual(builtin.status, 2, builtin.stderr);
    const lines = builtin.stderr.split('\n').filter((l) => l.startsWith('pas: '));
    assert.strictEqual(lines.length, 1, builtin.stderr);
    assert.match(lines[0], /^pas: folder:.*data2: the data data2 has 2 classes but the model's classifier has 10 outputs/);
    assert.doesNotMatch(builtin.stderr, /internal error/);
    assert.ok(!fs.existsSync(out), 'nothing written');

    const modelDir = path.join(root, 'ten-classes');
    const model = buildBuiltin('builtin:plain-cnn', { inputShape: [8, 8, 1], numClasses: 10, seed: 1 });
    await saveLayersModelToDir(model, modelDir);
    model.dispose();
    const file = runCli(['search', path.join(modelDir, 'model.json'), '--data', data, '--out', out, ...TRIAL, '--json']);
    assert.strictEqual(file.status, 2, file.stderr);
    const errors = parseEvents(file.stdout).filter((e) => e.type === 'error');
    assert.strictEqual(errors.length, 1);
    assert.match((errors[0] as { message: string }).message, /has 2 classes but the model's classifier has 10 outputs/);
    assert.ok(!fs.existsSync(out), 'nothing written');
  });

  it("the extension's worker path (dist/cli.js search ... --json) ends in an error outcome naming both counts", async () => {
    const modelDir = path.join(root, 'ten-classes-ext');
    const model = buildBuiltin('builtin:plain-cnn', { inputShape: [8, 8, 1], numClasses: 10, seed: 1 });
    await saveLayersModelToDir(model, modelDir);
    model.dispose();
    const args = buildSearchArgs({ model: path.join(modelDir, 'model.json'), data: { kind: 'folder', dir: folderWith(3) }, targetFraction: 0.5, searchEpochs: 1, finetuneEpochs: 0, backend: 'wasm', outDir: path.join(root, 'ext-out') });
    const outcome = await startWorker({ executable: process.execPath, args: [CLI, ...args] }).outcome;
    assert.strictEqual(outcome.kind, 'error', JSON.stringify(outcome));
    if (outcome.kind !== 'error') return;
    assert.strictEqual(outcome.exitCode, 2);
    assert.match(outcome.event.message, /has 3 classes but the model's classifier has 10 outputs/);
    assert.ok(!fs.existsSync(path.join(root, 'ext-out')));
  });
});
