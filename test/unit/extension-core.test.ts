// Host logic that needs no VS Code: line parsing, CLI arguments, output folder naming, model
// detection and webview message validation.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { JsonLineSplitter, parseEventLine } from '../../src/extension/core/lineSplitter';
import { buildInspectArgs, buildReparamArgs, buildSearchArgs, formatCommandLine, parseDataSpec, shellQuote, validateEpochsInput, validateFractionInput } from '../../src/extension/core/cliArgs';
import { chooseBuiltinOutputDir, chooseOutputDir } from '../../src/extension/core/outputNaming';
import { detectLayersModel } from '../../src/extension/core/modelDetection';
import { validateWebviewMessage } from '../../src/extension/core/webviewMessages';
import type { WorkerEvent } from '../../src/shared/workerProtocol';

function collect() {
  const events: WorkerEvent[] = [];
  const texts: string[] = [];
  const splitter = new JsonLineSplitter({ onEvent: (e) => events.push(e), onText: (t) => texts.push(t) });
  return { events, texts, splitter };
}

describe('extension: JSON line splitter', () => {
  it('parses complete lines into events in order', () => {
    const { events, texts, splitter } = collect();
    splitter.push('{"type":"start","protocol":1}\n{"type":"phase","phase":"search","epochs":2}\n');
    assert.deepEqual(events.map((e) => e.type), ['start', 'phase']);
    assert.deepEqual(texts, []);
  });

  it('joins a line split across chunks, at every possible cut', () => {
    const line = '{"type":"epoch","epoch":1,"widths":[1,2,3]}\n';
    for (let cut = 0; cut <= line.length; cut++) {
      const { events, splitter } = collect();
      splitter.push(line.slice(0, cut));
      splitter.push(line.slice(cut));
      assert.equal(events.length, 1, `cut at ${cut}`);
      assert.deepEqual((events[0] as { widths: number[] }).widths, [1, 2, 3]);
    }
  });

  it('joins a multi-byte UTF-8 character split across Buffer chunks', () => {
    const { events, splitter } = collect();
    const bytes = Buffer.from('{"type":"log","message":"größe ✓"}\n', 'utf8');
    for (let i = 0; i < bytes.length; i++) splitter.push(bytes.subarray(i, i + 1));
    assert.equal((events[0] as { message: string }).message, 'größe ✓');
  });

  it('passes garbage, arrays, objects without a type and blank lines as text, and keeps going', () => {
    const { events, texts, splitter } = collect();
    splitter.push('warning: something\n[1,2]\n{"no":"type"}\n{"type": 3}\n\n{broken json\r\n{"type":"done"}\r\n');
    assert.deepEqual(events.map((e) => e.type), ['done']);
    assert.deepEqual(texts, ['warning: something', '[1,2]', '{"no":"type"}', '{"type": 3}', '{broken json']);
  });

  it('flushes a last line without newline at end()', () => {
    const { events, splitter } = collect();
    splitter.push('{"type":"done"}');
    assert.equal(events.length, 0);
    splitter.end();
    assert.equal(events.length, 1);
  });

  it('parseEventLine rejects non-objects', () => {
    assert.equal(parseEventLine('null'), undefined);
    assert.equal(parseEventLine('"x"'), undefined);
    assert.equal(parseEventLine('{"type":"x"}')?.type, 'x');
  });
});

describe('extension: CLI arguments', () => {
  it('builds a search command with every option as separate argv entries', () => {
    const args = buildSearchArgs({
      model: '/home/u/my models/net "v2"/model.json',
      data: { kind: 'folder', dir: '/data/my images' },
      targetFraction: 0.5,
      searchEpochs: 1,
      finetuneEpochs: 0,
      pretrainEpochs: 2,
      backend: 'wasm',
      seed: 7,
      outDir: '/home/u/my models/net "v2"-pas',
    });
    assert.deepEqual(args, [
      'search', '/home/u/my models/net "v2"/model.json',
      '--data', 'folder:/data/my images',
      '--target-macs', '0.5',
      '--search-epochs', '1',
      '--finetune-epochs', '0',
      '--pretrain-epochs', '2',
      '--backend', 'wasm',
      '--seed', '7',
      '--out', '/home/u/my models/net "v2"-pas',
      '--json',
    ]);
  });

  it('uses the data spec forms the CLI knows', () => {
    const base = { model: 'builtin:default', targetFraction: 0.3, searchEpochs: 2, finetuneEpochs: 1 };
    assert.equal(buildSearchArgs({ ...base, data: { kind: 'sample' } })[3], 'sample');
    assert.equal(buildSearchArgs({ ...base, data: { kind: 'idx', dir: '/d' } })[3], 'idx:/d');
    assert.deepEqual(parseDataSpec('idx:/a b'), { kind: 'idx', dir: '/a b' });
    assert.deepEqual(parseDataSpec(' sample '), { kind: 'sample' });
    assert.equal(parseDataSpec('http://x'), undefined);
  });

  it('rejects out-of-range numbers instead of passing them on', () => {
    const base = { model: 'm', data: { kind: 'sample' as const }, targetFraction: 0.5, searchEpochs: 1, finetuneEpochs: 1 };
    assert.throws(() => buildSearchArgs({ ...base, targetFraction: 1 }), RangeError);
    assert.throws(() => buildSearchArgs({ ...base, targetFraction: Number.NaN }), RangeError);
    assert.throws(() => buildSearchArgs({ ...base, searchEpochs: 0 }), RangeError);
    assert.throws(() => buildSearchArgs({ ...base, finetuneEpochs: 1.5 }), RangeError);
  });

  it('builds inspect and reparam commands', () => {
    assert.deepEqual(buildInspectArgs('/a b/model.json'), ['inspect', '/a b/model.json', '--json']);
    assert.deepEqual(buildReparamArgs('/a/model.json', '/a-deployed'), ['reparam', '/a/model.json', '--out', '/a-deployed', '--check', '--json']);
  });

  it('quotes a command line for the log so a shell would split it back the same way', () => {
    assert.equal(shellQuote('plain/path.json'), 'plain/path.json');
    assert.equal(shellQuote('a b'), "'a b'");
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
    assert.equal(shellQuote(''), "''");
    assert.equal(formatCommandLine('/usr/bin/node', ['x y', '--json']), "/usr/bin/node 'x y' --json");
  });

  it('validates the input boxes', () => {
    assert.equal(validateFractionInput('0.5'), undefined);
    assert.equal(validateFractionInput('.25'), undefined);
    assert.match(validateFractionInput('0.99') ?? '', /between 0.05 and 0.95/);
    assert.match(validateFractionInput('abc') ?? '', /Enter a number/);
    assert.match(validateFractionInput('-0.5') ?? '', /Enter a number/);
    assert.equal(validateEpochsInput('3', 1, 100), undefined);
    assert.ok(validateEpochsInput('0', 1, 100));
    assert.ok(validateEpochsInput('2.5', 0, 100));
  });
});

describe('extension: output folder naming', () => {
  const model = path.resolve('/ws/models/net/model.json');
  it('puts the output next to the model folder, never inside it', () => {
    const dir = chooseOutputDir(model, 'pas', () => false);
    assert.equal(dir, path.resolve('/ws/models/net-pas'));
    assert.notEqual(path.dirname(dir + '/x'), path.dirname(model));
  });

  it('adds a numeric suffix until the name is free', () => {
    const taken = new Set([path.resolve('/ws/models/net-deployed'), path.resolve('/ws/models/net-deployed-2')]);
    assert.equal(chooseOutputDir(model, 'deployed', (p) => taken.has(p)), path.resolve('/ws/models/net-deployed-3'));
  });

  it('never returns the model folder even if the name rule would produce it', () => {
    // A model in a folder that is itself called "<x>-pas": the rule yields "<x>-pas-pas", and even
    // a hypothetical clash with the model folder is skipped.
    const m = path.resolve('/ws/a-pas/model.json');
    const dir = chooseOutputDir(m, 'pas', () => false);
    assert.notEqual(dir, path.resolve('/ws/a-pas'));
  });

  it('on a real file system: a sibling folder, suffixed past existing ones, never the model folder', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-naming-'));
    try {
      const modelDir = path.join(tmp, 'my net');
      fs.mkdirSync(modelDir);
      fs.writeFileSync(path.join(modelDir, 'model.json'), '{}');
      fs.mkdirSync(path.join(tmp, 'my-net-deployed'));
      const first = chooseOutputDir(path.join(modelDir, 'model.json'), 'deployed', fs.existsSync);
      assert.equal(first, path.join(tmp, 'my-net-deployed-2'));
      assert.notEqual(first, modelDir);
      assert.ok(!first.startsWith(modelDir + path.sep));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('names builtin outputs safely', () => {
    assert.equal(chooseBuiltinOutputDir('builtin:default', '/ws', 'pas', () => false), path.resolve('/ws/builtin-default-pas'));
  });
});

describe('extension: Layers model detection', () => {
  it('accepts a Layers model and says why other JSON is not one', () => {
    const layers = { format: 'layers-model', modelTopology: { class_name: 'Sequential', config: {} }, weightsManifest: [] };
    assert.deepEqual(detectLayersModel(JSON.stringify(layers)), { ok: true });
    const nested = { modelTopology: { model_config: { class_name: 'Functional' } }, weightsManifest: [] };
    assert.deepEqual(detectLayersModel(JSON.stringify(nested)), { ok: true });
    const verdict = (text: string) => {
      const d = detectLayersModel(text);
      return d.ok ? 'ok' : d.reason;
    };
    assert.match(verdict('{"name":"pkg"}'), /no "modelTopology"/);
    assert.match(verdict('{"format":"graph-model","modelTopology":{"node":[]}}'), /graph model/);
    assert.match(verdict('{"modelTopology":{"config":{}}}'), /class_name/);
    assert.match(verdict('{"modelTopology": {'), /not valid JSON/);
    assert.match(verdict('[1]'), /not a JSON object/);
  });
});

describe('extension: webview message validation', () => {
  it('accepts the known messages', () => {
    for (const m of [{ type: 'ready' }, { type: 'cancel' }, { type: 'reparameterize' }, { type: 'startSearch' }, { type: 'setUpNativeBackend' }, { type: 'open', target: 'report' }]) {
      const v = validateWebviewMessage(m);
      assert.ok(v.ok, JSON.stringify(m));
      if (v.ok) assert.deepEqual(v.message, m);
    }
  });

  it('rejects unknown types, extra fields, bad targets and non-objects', () => {
    const bad = [
      null, 42, 'ready', [], {}, { type: 'exec', command: 'rm -rf /' },
      { type: 'ready', extra: 1 }, { type: 'open' }, { type: 'open', target: '/etc/passwd' },
      { type: 'open', target: 'report', path: '/x' }, { type: { toString: 'ready' } },
    ];
    for (const m of bad) assert.equal(validateWebviewMessage(m).ok, false, JSON.stringify(m));
  });
});
