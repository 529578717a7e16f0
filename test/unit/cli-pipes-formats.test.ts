import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { isPasInputError } from '../../src/engine/errors';
import { loadModelSource } from '../../src/engine/model';
import { detectForeignModelFormat } from '../../src/engine/io/modelFormats';
import { CLI, makeTempDir, REPO_ROOT, runCli } from '../support/cli';

/** Runs the CLI with stdout a pipe that is closed after `keepLines` lines (0: at once). */
function runWithClosedStdout(args: string[], keepLines: number): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let seen = 0;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const close = () => child.stdout.destroy();
    if (keepLines === 0) close();
    else child.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString('utf8').split('\n').length - 1;
      if (seen >= keepLines) close();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe('CLI: closed stdout and foreign model formats', function () {
  this.timeout(300_000);
  let work: string;
  before(() => (work = makeTempDir('pas-pipes-')));
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  for (const json of [false, true]) {
    it(`inspect${json ? ' --json' : ''} into a closed pipe exits 0 without a stack trace`, async () => {
      const args = ['inspect', 'builtin:residual-cnn', '--backend', 'cpu', ...(json ? ['--json'] : [])];
      const result = await runWithClosedStdout(args, 0);
      assert.equal(result.signal, null);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /EPIPE|\n\s+at /);
    });
  }

  it('search --json whose reader goes away after the first event exits 0 and releases its output folder', async () => {
    const out = path.join(work, 'search-run');
    const args = ['search', 'builtin:plain-cnn', '--data', 'sample', '--pretrain-epochs', '0', '--search-epochs', '1', '--finetune-epochs', '0', '--max-train', '64', '--max-test', '32', '--out', out, '--backend', 'cpu', '--json'];
    const result = await runWithClosedStdout(args, 1);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /EPIPE|\n\s+at /);
    assert.ok(!fs.existsSync(path.join(out, '.lock')), 'the output lock is released');
  });

  describe('model files in another format are named, with what to do (exit 2)', () => {
    const hdf5 = Buffer.concat([Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(64)]);
    const zipWith = (entry: string) => Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(26), Buffer.from(entry, 'latin1'), Buffer.alloc(32)]);
    const tflite = Buffer.concat([Buffer.from([0x1c, 0, 0, 0]), Buffer.from('TFL3', 'latin1'), Buffer.alloc(32)]);
    const onnx = Buffer.concat([Buffer.from([0x08, 0x07, 0x12, 0x07]), Buffer.from('pytorch', 'latin1'), Buffer.alloc(32)]);
    const cases: Array<{ file: string; bytes: Buffer; format: RegExp; advice: RegExp }> = [
      { file: 'net.h5', bytes: hdf5, format: /Keras HDF5/, advice: /tensorflowjs_converter --input_format=keras/ },
      { file: 'net.keras', bytes: zipWith('config.json'), format: /Keras 3/, advice: /tensorflowjs_converter/ },
      { file: 'net.pt', bytes: zipWith('archive/data.pkl'), format: /PyTorch/, advice: /torch\.onnx\.export/ },
      { file: 'net.tflite', bytes: tflite, format: /TensorFlow Lite/, advice: /Keras model/ },
      // ONNX is read (src/engine/onnx): a broken one is refused by the importer, under any name.
      { file: 'net.onnx', bytes: onnx, format: /not an ONNX model/, advice: /truncated or another format/ },
      { file: 'exported.bin', bytes: onnx, format: /not an ONNX model/, advice: /truncated or another format/ },
      { file: 'net.pb', bytes: Buffer.from([0x0a, 0x10, 0x0a]), format: /TensorFlow graph/, advice: /graph model/ },
      // renamed: the content decides
      { file: 'model.json', bytes: hdf5, format: /Keras HDF5/, advice: /tensorflowjs_converter/ },
      { file: 'weights.bin', bytes: zipWith('archive/data.pkl'), format: /PyTorch/, advice: /torch\.onnx\.export/ },
      { file: 'renamed.h5', bytes: tflite, format: /TensorFlow Lite/, advice: /Keras model/ },
    ];
    for (const c of cases) {
      it(`${c.file} (${c.format.source})`, async () => {
        const dir = makeTempDir('pas-format-');
        try {
          const file = path.join(dir, c.file);
          fs.writeFileSync(file, c.bytes);
          await assert.rejects(loadModelSource(file), (error: unknown) => {
            assert.ok(isPasInputError(error), String(error));
            assert.equal(error.file, file);
            assert.match(error.reason, c.format);
            assert.match(error.reason, c.advice);
            return true;
          });
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }

    it('a folder with a SavedModel and no model.json is named as a TensorFlow graph', async () => {
      const dir = path.join(work, 'saved');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'saved_model.pb'), Buffer.from([0x08, 0x01, 0x12, 0x00]));
      await assert.rejects(loadModelSource(dir), /TensorFlow graph/);
    });

    it('a JSON file is left to the model.json loader whatever its name', () => {
      const file = path.join(work, 'model.h5');
      fs.writeFileSync(file, '{"modelTopology": {}}');
      assert.equal(detectForeignModelFormat(file), undefined);
    });

    it('the CLI exits 2 with one line naming the format of a renamed Keras file', () => {
      const file = path.join(work, 'mystery.bin');
      fs.writeFileSync(file, hdf5);
      const result = runCli(['inspect', file, '--backend', 'cpu']);
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, /pas: .*mystery\.bin: this is a Keras HDF5 model .*tensorflowjs_converter --input_format=keras/);
      assert.doesNotMatch(result.stderr, /ENOTDIR|\n\s+at /);
    });
  });
});
