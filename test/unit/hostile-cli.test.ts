/**
 * Hostile inputs through the built CLI (issue 6): every broken model file, data set and setting
 * is refused by inspect, reparam and search with exit code 2, one `pas: FILE: message` line on
 * stderr (and an `error` event with --json), no output folder, and an untouched input folder.
 * The loader's own messages are tested in model-io.test.ts; here it is the CLI contract.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { saveLayersModelToDir } from '../../src/engine/io';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { fingerprintFolder, makeTempDir, parseEvents, runCli } from '../support/cli';

/** The fast search settings: the model and data checks all run before any training. */
const FAST = ['--max-train', '320', '--max-test', '100', '--batch-size', '32', '--pretrain-epochs', '1', '--search-epochs', '1', '--finetune-epochs', '1', '--backend', 'wasm'];

interface Refusal {
  stderrLine: string;
  errorEvent?: { message: string; file?: string };
}

/** Runs the CLI and checks the refusal contract; returns the stderr line and the JSON error event. */
function expectRefused(args: string[], options: { json?: boolean; file?: string; pattern: RegExp }): Refusal {
  const result = runCli(options.json ? [...args, '--json'] : args, { timeoutMs: 120_000 });
  const lines = result.stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('backend:'));
  assert.strictEqual(result.status, 2, `exit code for ${args.join(' ')}; stderr:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /internal error|at .*\.js:\d+/);
  assert.strictEqual(lines.length, 1, `one stderr line, got:\n${lines.join('\n')}`);
  assert.match(lines[0], /^pas: /);
  if (options.file) assert.ok(lines[0].startsWith(`pas: ${options.file}: `), `${lines[0]} names ${options.file}`);
  assert.match(lines[0], options.pattern);
  if (!options.json) return { stderrLine: lines[0] };
  const errors = parseEvents(result.stdout).filter((event) => event.type === 'error') as Array<{ message: string; file?: string }>;
  assert.strictEqual(errors.length, 1, `one error event in:\n${result.stdout}`);
  assert.match(errors[0].message, options.pattern);
  if (options.file) assert.strictEqual(errors[0].file, options.file);
  return { stderrLine: lines[0], errorEvent: errors[0] };
}

describe('hostile inputs through the CLI (exit 2, one line, nothing written)', function () {
  this.timeout(300_000);
  let root: string;
  let valid: string;

  before(async () => {
    root = makeTempDir('pas-hostile-cli-');
    valid = path.join(root, 'valid');
    const model = buildBuiltin('builtin:default', { seed: 1 });
    await saveLayersModelToDir(model, valid);
    model.dispose();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  /** A copy of the valid model folder, broken by `edit`; returns its model.json. */
  function brokenModel(name: string, edit: (dir: string, json: any) => any): string {
    const dir = path.join(root, name, 'model');
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.cpSync(valid, dir, { recursive: true });
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const edited = edit(dir, json);
    if (edited !== null) fs.writeFileSync(file, typeof edited === 'string' ? edited : JSON.stringify(edited ?? json));
    return file;
  }

  const layersOf = (json: any): any[] => json.modelTopology.config.layers;
  // `names`: the file the message must name (the shard for shard problems), default model.json.
  const cases: Array<{ name: string; pattern: RegExp; edit: (dir: string, json: any) => any; names?: string }> = [
    { name: 'truncated JSON', pattern: /JSON|truncated|end/i, edit: (dir) => fs.readFileSync(path.join(dir, 'model.json'), 'utf8').slice(0, 500) },
    { name: 'JSON that is not a Layers model', pattern: /Layers model|modelTopology/i, edit: () => ({ hello: 'world' }) },
    { name: 'a missing shard', pattern: /weights\.bin|shard|missing|no such/i, edit: (dir) => { fs.rmSync(path.join(dir, 'weights.bin')); return null; } },
    { name: 'a short shard', pattern: /bytes short/i, names: 'weights.bin', edit: (dir) => { fs.truncateSync(path.join(dir, 'weights.bin'), 1000); return null; } },
    { name: 'an oversized shard', pattern: /bytes too long/i, names: 'weights.bin', edit: (dir) => { fs.appendFileSync(path.join(dir, 'weights.bin'), Buffer.alloc(16)); return null; } },
    {
      name: 'a manifest shape that disagrees with the layer config',
      pattern: /shape \[3, 3, (\d+), (\d+)\] from the layer config but \[3, 3, \2, \1\] in the weights manifest/,
      // Same element count, so the shard size still matches and the shape check is what refuses it.
      edit: (_dir, json) => { const spec = json.weightsManifest[0].weights.find((w: any) => w.shape.length === 4 && w.shape[0] === 3 && w.shape[2] !== w.shape[3]); spec.shape = [3, 3, spec.shape[3], spec.shape[2]]; },
    },
    { name: 'NaN weights', pattern: /NaN|finite/i, edit: (dir) => { const fd = fs.openSync(path.join(dir, 'weights.bin'), 'r+'); fs.writeSync(fd, Buffer.from([0, 0, 0xc0, 0x7f]), 0, 4, 8); fs.closeSync(fd); return null; } },
    { name: 'a layer class TF.js cannot load (Lambda)', pattern: /'Lambda', which TF\.js cannot load/, edit: (_dir, json) => { layersOf(json)[1].class_name = 'Lambda'; } },
    {
      name: 'a cycle in the layer graph',
      pattern: /cycle/i,
      // A feeds B and B feeds A: give A's producer's slot to B.
      edit: (_dir, json) => {
        const layers = layersOf(json);
        const b = layers.find((l: any) => l.class_name === 'ReLU');
        const a = layers.find((l: any) => l.name === b.inbound_nodes[0][0][0]);
        a.inbound_nodes = [[[b.name, 0, 0, {}]]];
      },
    },
    { name: 'a dangling input', pattern: /does not exist/i, edit: (_dir, json) => { layersOf(json)[2].inbound_nodes = [[['no_such_layer', 0, 0, {}]]]; } },
    { name: 'a layer that is never applied (used to hang tfjs)', pattern: /no inbound nodes/i, edit: (_dir, json) => { layersOf(json)[2].inbound_nodes = []; } },
    { name: 'a ../ manifest path', pattern: /outside|escape|\.\./i, edit: (_dir, json) => { json.weightsManifest[0].paths = ['../valid/weights.bin']; } },
    { name: 'an absolute manifest path', pattern: /absolute|outside/i, edit: (_dir, json) => { json.weightsManifest[0].paths = [path.join(root, 'valid', 'weights.bin')]; } },
    {
      name: 'a symlink out of the folder',
      pattern: /outside|link|escape/i,
      edit: (dir) => { fs.rmSync(path.join(dir, 'weights.bin')); fs.symlinkSync(path.join(root, 'valid', 'weights.bin'), path.join(dir, 'weights.bin')); return null; },
    },
  ];

  cases.forEach(({ name, pattern, edit, names }, index) => {
    it(`${name}: inspect, reparam and search all refuse it`, () => {
      const modelJson = brokenModel(`case-${index}`, edit);
      const modelDir = path.dirname(modelJson);
      const file = path.join(modelDir, names ?? 'model.json');
      const before = fingerprintFolder(modelDir);
      const siblingsBefore = fs.readdirSync(path.dirname(modelDir)).sort();
      // Text mode for inspect, --json for the two that write, so both forms are covered.
      expectRefused(['inspect', modelJson, '--backend', 'wasm'], { file, pattern });
      expectRefused(['reparam', modelJson, '--backend', 'wasm'], { json: true, file, pattern });
      expectRefused(['search', modelJson, ...FAST], { json: true, file, pattern });
      // No default output folder next to the model, and the input is byte for byte the same.
      assert.deepStrictEqual(fs.readdirSync(path.dirname(modelDir)).sort(), siblingsBefore);
      assert.deepStrictEqual(fingerprintFolder(modelDir), before);
    });
  });

  describe('data', () => {
    function writePng(file: string, value: number): void {
      const png = new PNG({ width: 8, height: 8 });
      png.data.fill(value);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, PNG.sync.write(png));
    }
    function imageFolder(name: string, classes: string[], perClass = 12): string {
      const dir = path.join(root, 'data', name);
      for (const c of classes) for (let i = 0; i < perClass; i++) writePng(path.join(dir, c, `${i}.png`), 20 * i);
      return dir;
    }
    function idx(dims: number[], data: Uint8Array): Buffer {
      const header = Buffer.alloc(4 + 4 * dims.length);
      header[2] = 0x08;
      header[3] = dims.length;
      dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
      return Buffer.concat([header, Buffer.from(data)]);
    }
    function idxFolder(name: string, edit: { labels?: number[]; imageCount?: number; testCount?: number; classesTxt?: string } = {}): string {
      const dir = path.join(root, 'data', name);
      fs.mkdirSync(dir, { recursive: true });
      const labels = edit.labels ?? Array.from({ length: 64 }, (_, i) => i % 10);
      fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), idx([edit.imageCount ?? 64, 28, 28], new Uint8Array(64 * 784)));
      fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), idx([labels.length], Uint8Array.from(labels)));
      const testCount = edit.testCount ?? 16;
      fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idx([testCount, 28, 28], new Uint8Array(testCount * 784)));
      fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idx([testCount], Uint8Array.from({ length: testCount }, (_, i) => i % 10)));
      if (edit.classesTxt) fs.writeFileSync(path.join(dir, 'classes.txt'), edit.classesTxt);
      return dir;
    }
    const dataCases: Array<{ name: string; make: () => { spec: string; file: string }; pattern: RegExp }> = [
      {
        name: 'a corrupt image',
        make: () => { const dir = imageFolder('corrupt', ['a', 'b']); const file = path.join(dir, 'b', '3.png'); fs.writeFileSync(file, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('broken')])); return { spec: `folder:${dir}`, file }; },
        pattern: /corrupt PNG/,
      },
      {
        name: 'a class folder with no images',
        make: () => { const dir = imageFolder('empty-class', ['a', 'b']); fs.mkdirSync(path.join(dir, 'c')); return { spec: `folder:${dir}`, file: path.join(dir, 'c') }; },
        pattern: /no PNG or JPEG/,
      },
      { name: 'one class only', make: () => { const dir = imageFolder('one-class', ['a'], 40); return { spec: `folder:${dir}`, file: dir }; }, pattern: /one class/ },
      {
        name: 'labels out of range of classes.txt',
        make: () => { const dir = idxFolder('label-range', { labels: Array.from({ length: 64 }, (_, i) => (i === 7 ? 12 : i % 10)), classesTxt: '0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n' }); return { spec: `idx:${dir}`, file: path.join(dir, 'train-labels-idx1-ubyte') }; },
        pattern: /label 12 at index 7 is out of range/,
      },
      {
        name: 'an IDX header that disagrees with the file size',
        make: () => { const dir = idxFolder('idx-size', { imageCount: 65 }); return { spec: `idx:${dir}`, file: path.join(dir, 'train-images-idx3-ubyte') }; },
        pattern: /IDX header says shape \[65, 28, 28\]/,
      },
      {
        name: 'an empty test set',
        make: () => { const dir = idxFolder('no-test', { testCount: 0 }); return { spec: `idx:${dir}`, file: path.join(dir, 't10k-images-idx3-ubyte') }; },
        pattern: /test set holds no images/,
      },
    ];
    for (const { name, make, pattern } of dataCases) {
      it(`${name}: search refuses it before writing anything`, () => {
        const { spec, file } = make();
        const dataDir = spec.slice(spec.indexOf(':') + 1);
        const before = fingerprintFolder(dataDir);
        const out = path.join(root, 'data-out', path.basename(dataDir));
        expectRefused(['search', 'builtin:default', '--data', spec, '--out', out, ...FAST.filter((a) => a !== '--max-train' && a !== '320')], { json: true, file, pattern });
        assert.ok(!fs.existsSync(out), 'no output folder');
        assert.deepStrictEqual(fingerprintFolder(dataDir), before);
      });
    }
  });

  describe('settings and arguments', () => {
    const refusedArgs: Array<[string, string[], RegExp]> = [
      ['a target of 0', ['--target-macs', '0'], /fraction strictly between 0 and 1/],
      ['a target of 1', ['--target-macs', '1'], /fraction strictly between 0 and 1/],
      ['a negative target', ['--target-macs', '-0.5'], /fraction strictly between 0 and 1/],
      ['negative epochs', ['--finetune-epochs', '-1'], /integer >= 0/],
      ['fractional epochs', ['--search-epochs', '1.5'], /integer >= 0/],
      ['a zero batch size', ['--batch-size', '0'], /positive integer/],
    ];
    for (const [name, args, pattern] of refusedArgs) {
      it(`refuses ${name} as a usage error (exit 2, error event with --json)`, () => {
        const result = runCli(['search', 'builtin:default', ...FAST, ...args, '--json']);
        assert.strictEqual(result.status, 2, result.stderr);
        assert.match(result.stderr.split('\n')[0], pattern);
        const errors = parseEvents(result.stdout).filter((e) => e.type === 'error') as Array<{ message: string }>;
        assert.strictEqual(errors.length, 1);
        assert.match(errors[0].message, pattern);
      });
    }

    const refusedRuns: Array<[string, string[], RegExp]> = [
      ['an unreachable target (below the unprunable MACs)', ['--target-macs', '0.001'], /unreachable/],
      ['0 search epochs with method pas (the target would be ignored)', ['--search-epochs', '0'], /--search-epochs 0/],
      ['a batch larger than the data set', ['--batch-size', '100000'], /batch size 100000 is larger/],
    ];
    for (const [name, args, pattern] of refusedRuns) {
      it(`refuses ${name} before writing anything`, () => {
        const out = path.join(root, 'settings-out', name.replace(/\W+/g, '-'));
        expectRefused(['search', 'builtin:default', ...FAST, ...args, '--out', out], { json: true, pattern });
        assert.ok(!fs.existsSync(out), 'no output folder');
      });
    }

    it('refuses an output folder under a regular file, and a non-empty one', () => {
      const file = path.join(root, 'a-file');
      fs.writeFileSync(file, 'not a folder');
      expectRefused(['search', 'builtin:default', ...FAST, '--out', path.join(file, 'out')], { json: true, pattern: /not a writable folder/ });
      expectRefused(['reparam', valid, '--backend', 'wasm', '--out', path.join(file, 'out')], { json: true, pattern: /not a folder/ });
      const full = path.join(root, 'non-empty');
      fs.mkdirSync(full, { recursive: true });
      fs.writeFileSync(path.join(full, 'keep.txt'), 'mine');
      expectRefused(['search', 'builtin:default', ...FAST, '--out', full], { json: true, file: full, pattern: /not empty/ });
      assert.deepStrictEqual(fs.readdirSync(full), ['keep.txt']);
      assert.strictEqual(fs.readFileSync(file, 'utf8'), 'not a folder');
    });

    it('refuses --resume of a folder that is not a search folder', () => {
      const missing = path.join(root, 'no-such-run');
      expectRefused(['search', '--resume', missing, '--backend', 'wasm'], { json: true, file: missing, pattern: /state\.json/ });
      assert.ok(!fs.existsSync(missing));
    });
  });
});
