/**
 * Pruning without labels (issue 10): the U-Net-style family model (Conv2DTranspose, UpSampling2D,
 * Concatenate skips, Cropping2D; a per-pixel output) is pruned from a flat folder of unlabelled
 * images. The job must distil from the original model on its own (no --distill given), land on
 * the MACs target, deploy a model equal to the fine-tuned masked one, and report the deployed
 * model's fidelity to the original as a PSNR. Part of `npm run test:models`.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { DoneEvent, LogEvent } from '../../src/shared/workerProtocol';
import { saveLayersModelToDir } from '../../src/engine/io';
import { makeTempDir, parseEvents, runCli } from '../support/cli';
import { familyByName } from '../support/families';
import { makeFlatFolder } from '../support/imageFolders';

describe('a U-Net prunes from a folder of unlabelled images by distillation', function () {
  this.timeout(600_000);
  let work: string;

  before(async () => {
    await tf.setBackend('cpu');
    work = makeTempDir('pas-unet-distill-');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('to 50% of its MACs, with the fidelity of the deployed model in the report', async () => {
    const modelDir = path.join(work, 'unet');
    const model = familyByName('unet').build(4242);
    await saveLayersModelToDir(model, modelDir, { overwrite: true });
    model.dispose();
    const images = makeFlatFolder(path.join(work, 'images'), 48, 16, true);
    const out = path.join(work, 'run');
    const result = runCli([
      'search', path.join(modelDir, 'model.json'), '--data', `folder:${images}`, '--batch-size', '8',
      '--pretrain-epochs', '0', '--search-epochs', '2', '--finetune-epochs', '1', '--target-macs', '0.5',
      '--backend', 'wasm', '--seed', '5', '--out', out, '--json',
    ]);
    assert.strictEqual(result.status, 0, result.stderr.slice(-3000));
    const events = parseEvents(result.stdout);
    const said = events.filter((e): e is LogEvent => e.type === 'log').map((e) => e.message);
    assert.ok(said.some((m) => /no labels: distilling/.test(m)), `the job says it distils: ${said.join(' | ')}`);
    const report = (events.find((e) => e.type === 'done') as DoneEvent | undefined)?.report;
    assert.ok(report, 'no done event');
    assert.strictEqual(report.labelled, false);
    assert.strictEqual(report.distilled, true);
    assert.ok(report.macsAfter <= report.targetMacs && report.macsAfter >= 0.9 * report.targetMacs, `MACs ${report.macsAfter} vs target ${report.targetMacs}`);
    assert.ok(report.reparamMaxAbsDiff <= 1e-4, `deployed vs masked ${report.reparamMaxAbsDiff}`);
    assert.strictEqual(report.fidelity?.metric, 'psnr-db');
    assert.ok(report.fidelity.value === null || Number.isFinite(report.fidelity.value), `fidelity ${report.fidelity.value}`);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    assert.deepStrictEqual(saved.fidelity, report.fidelity);
    process.stderr.write(`      U-Net: MACs ${report.macsBefore} -> ${report.macsAfter} (target ${Math.round(report.targetMacs)}), fidelity ${report.fidelity.value} dB PSNR\n`);
  });
});
