/** The tiny ONNX search the unit and slow suites share. Not a test file. */
import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import type { DoneEvent } from '../../src/shared/workerProtocol';
import { loadModelSource } from '../../src/engine/model';
import { parseEvents, runCli } from './cli';
import { FixtureName, fixturePath, nchwToNhwc, relativeError, runOnnx } from './onnx';
import { predictModel, seededValues } from './tensors';

const TOLERANCE = 1e-4;

/** A few images of the bundled sample, one epoch each: the ONNX path end to end, not accuracy. */
export const TINY_SEARCH = ['--data', 'sample', '--max-train', '48', '--max-test', '16', '--batch-size', '16', '--search-epochs', '1', '--finetune-epochs', '1', '--seed', '3', '--backend', 'wasm', '--json'];

/** Runs the tiny search and checks the deployed ONNX against the fine-tuned masked checkpoint. */
export async function searchAndCheck(work: string, name: FixtureName, target = 0.5): Promise<void> {
  const out = path.join(work, `search-${name}`);
  const result = runCli(['search', fixturePath(name), ...TINY_SEARCH, '--target-macs', String(target), '--format', 'onnx', '--out', out]);
  assert.equal(result.status, 0, result.stderr);
  const done = parseEvents(result.stdout).find((e) => e.type === 'done') as DoneEvent;
  const report = done.report!;
  assert.equal(report.deployedModel, path.join(out, 'deployed', 'model.onnx'));
  assert.deepEqual(fs.readdirSync(path.join(out, 'deployed')), ['model.onnx']);
  // On the budget: the projection stops within one channel's MACs of the target.
  assert.ok(Math.abs(report.macsAfter / report.macsBefore - target) < 0.05, `MACs ${report.macsAfter} of ${report.macsBefore}`);
  const { model: masked } = await loadModelSource(report.searchedCheckpoint);
  const [, h, w, c] = masked.inputs[0].shape as number[];
  const shape = [2, c, h, w];
  const values = seededValues(2 * c * h * w, 41);
  const input = tf.tensor(nchwToNhwc(values, shape), [2, h, w, c]);
  const expected = predictModel(masked, input);
  input.dispose();
  masked.dispose();
  const onnx = await runOnnx(report.deployedModel, values, shape);
  assert.deepEqual(onnx.inputNames, ['input']);
  assert.deepEqual(onnx.outputNames, ['logits']);
  const error = relativeError(onnx.output, expected);
  assert.ok(error <= TOLERANCE, `deployed ONNX vs fine-tuned masked model: relative error ${error}`);
}

