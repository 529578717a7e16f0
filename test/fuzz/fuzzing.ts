/**
 * Fuzzing of the untrusted inputs PaS reads: a model folder (model.json + weight shards) and IDX
 * data files. Mutations are seeded, so a failing case can be replayed by its seed and index.
 *
 * Most cases run in-process against the same functions the CLI calls (`loadModelSource` +
 * `inspectModel`, `readIdxImagesAndLabels`): a PasInputError is a clean refusal, any other
 * throw is a bug. A sample of cases also goes through the built CLI (`dist/cli.js`), where exit
 * code 1 / "internal error", a hang past the timeout, or any change in the input folder is a bug.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { readIdxImagesAndLabels } from '../../src/engine/data/idx';
import { PasInputError } from '../../src/engine/errors';
import { inspectModel } from '../../src/engine/inspect';
import { saveLayersModelToDir } from '../../src/engine/io';
import { loadModelSource } from '../../src/engine/model';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { CLI, fingerprintFolder, REPO_ROOT } from '../support/cli';
import { mulberry32 } from '../../src/engine/data/random';
import { runTopologyFuzz } from './topologyFuzzing';

export type Outcome = 'accepted' | 'refused' | 'crash' | 'timeout' | 'wroteInput';

export interface CaseResult {
  target: 'model' | 'idx' | 'topology';
  via: 'inProcess' | 'cli';
  mutation: string;
  outcome: Outcome;
  exitCode?: number | null;
  /** For failures: the error message or the stderr tail. */
  detail?: string;
  ms: number;
}

export interface FuzzOptions {
  seed: number;
  modelCases: number;
  idxCases: number;
  /** How many of the model cases (and of the IDX cases) also run through the CLI. */
  cliModelCases: number;
  cliIdxCases: number;
  /** Topology mutations of the architecture-family models (topologyFuzzing.ts), and how many go through the CLI. */
  topologyCases?: number;
  cliTopologyCases?: number;
  /** Per-CLI-run timeout. */
  cliTimeoutMs: number;
  /** A scratch folder; every case folder is made under it. */
  workDir: string;
  log?: (line: string) => void;
}

export interface FuzzSummary {
  seed: number;
  totalCases: number;
  byTarget: Record<string, Record<string, number>>;
  exitCodes: Record<string, number>;
  failures: CaseResult[];
  wallSeconds: number;
}

/** The engine's seeded generator picks the mutations (one generator in the project). */
export const makeRandom = mulberry32;

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];
const intBelow = (random: Random, n: number) => Math.floor(random() * n);

/** A valid model folder: a small builtin in its training-time form, saved by our saver. */
export async function writeBaseModels(dir: string): Promise<string[]> {
  const specs: Array<[string, Parameters<typeof buildBuiltin>[1]]> = [
    ['builtin:default', { inputShape: [8, 8, 1], numClasses: 3, widthMultiplier: 0.25, seed: 1 }],
    ['builtin:residual-cnn', { inputShape: [8, 8, 3], numClasses: 4, widthMultiplier: 0.25, seed: 2 }],
  ];
  const folders: string[] = [];
  fs.mkdirSync(dir, { recursive: true });
  for (const [spec, options] of specs) {
    const folder = path.join(dir, `base-${spec.replace('builtin:', '')}`);
    const model = buildBuiltin(spec, options);
    await saveLayersModelToDir(model, folder, { overwrite: true });
    model.dispose();
    folders.push(folder);
  }
  return folders;
}

// ---- model.json / weights mutations -------------------------------------------------------

interface ModelFiles {
  json: string;
  weights: Buffer;
  /** Extra files to write next to model.json (e.g. a second shard). */
  extra?: Record<string, Buffer>;
}

/** Every [container, key] of a JSON value, depth first. */
function jsonSlots(value: unknown, out: Array<[any, string | number, string]> = [], at = ''): Array<[any, string | number, string]> {
  if (Array.isArray(value)) value.forEach((v, i) => { out.push([value, i, `${at}[${i}]`]); jsonSlots(v, out, `${at}[${i}]`); });
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) { out.push([value, k, `${at}.${k}`]); jsonSlots(v, out, `${at}.${k}`); }
  return out;
}

const HOSTILE_STRINGS = ['', '../weights.bin', '../../etc/passwd', '/etc/hostname', 'sub/../../x', 'Conv2D', 'Lambda', 'Model', 'Sequential', 'float16', 'uint8', 'int32', 'complex64', 'string', 'bool', '\u0000', 'x'.repeat(5000), '__proto__', 'constructor'];
const HOSTILE_NUMBERS = [0, -1, 1, 2, 3, 7, 1e9, 2 ** 31, 2 ** 32 + 1, 1e308, -1e308, 0.5, Number.MAX_SAFE_INTEGER];
/** Raw JSON tokens that JSON.stringify cannot produce: NaN, Infinity, huge exponents. */
const RAW_NUMBER_TOKENS = ['NaN', 'Infinity', '-Infinity', '1e400', '-0', '1e-400', '123456789012345678901234567890'];

function mutateJsonValue(random: Random, root: any): string {
  const slots = jsonSlots(root);
  // Bias towards the parts a loader trusts most: the manifest and the layer configs.
  const preferred = slots.filter(([, , at]) => /weightsManifest|class_name|shape|dtype|units|filters|kernel_size|inbound_nodes|name|paths/.test(at));
  const [container, key, at] = pick(random, preferred.length > 0 && random() < 0.7 ? preferred : slots);
  const old = container[key];
  const kind = intBelow(random, 9);
  switch (kind) {
    case 0: delete container[key]; if (Array.isArray(container)) container.splice(key as number, 1); return `delete ${at}`;
    case 1: container[key] = null; return `${at} = null`;
    case 2: container[key] = pick(random, HOSTILE_NUMBERS); return `${at} = ${container[key]}`;
    case 3: container[key] = pick(random, HOSTILE_STRINGS); return `${at} = ${JSON.stringify(container[key]).slice(0, 40)}`;
    case 4: container[key] = Array.isArray(old) ? [] : {}; return `${at} = empty`;
    case 5: if (Array.isArray(old) && old.length > 0) { old.push(structuredClone(old[0])); return `${at} duplicated first element`; } container[key] = [old, old]; return `${at} = [old, old]`;
    case 6: if (typeof old === 'number') { container[key] = -old; return `${at} negated`; } container[key] = 1; return `${at} = 1`;
    case 7: container[key] = typeof old === 'string' ? old + '_x' : String(old); return `${at} renamed/stringified`;
    default: {
      // Swap with another slot's value (shape of one weight onto another, names swapped, ...).
      const [c2, k2, at2] = pick(random, slots);
      const tmp = c2[k2]; c2[k2] = old; container[key] = tmp; return `swap ${at} <-> ${at2}`;
    }
  }
}

function mutateModel(random: Random, base: ModelFiles): { files: ModelFiles; mutation: string } {
  const kind = intBelow(random, 10);
  const json = base.json;
  const weights = Buffer.from(base.weights);
  switch (kind) {
    case 0: { // byte flips in model.json
      const bytes = Buffer.from(json, 'utf8');
      const n = 1 + intBelow(random, 4);
      for (let i = 0; i < n; i++) bytes[intBelow(random, bytes.length)] = intBelow(random, 256);
      return { files: { json: bytes.toString('latin1'), weights }, mutation: `model.json: ${n} byte flip(s)` };
    }
    case 1: { // truncation of model.json
      const at = intBelow(random, json.length);
      return { files: { json: json.slice(0, at), weights }, mutation: `model.json truncated at ${at}/${json.length}` };
    }
    case 2: case 3: case 4: case 5: { // JSON value mutations (the most productive kind)
      const root = JSON.parse(json);
      const steps = 1 + intBelow(random, 3);
      const done: string[] = [];
      for (let i = 0; i < steps; i++) done.push(mutateJsonValue(random, root));
      return { files: { json: JSON.stringify(root), weights }, mutation: `json: ${done.join('; ')}` };
    }
    case 6: { // a raw number token JSON.stringify cannot write (NaN, Infinity, 1e400)
      const numbers = [...json.matchAll(/(?<=[:\[,])-?\d+(\.\d+)?(e[+-]?\d+)?/g)];
      const match = pick(random, numbers);
      const token = pick(random, RAW_NUMBER_TOKENS);
      const mutated = json.slice(0, match.index) + token + json.slice(match.index! + match[0].length);
      return { files: { json: mutated, weights }, mutation: `number at ${match.index} -> ${token}` };
    }
    case 7: { // weight byte flips (NaN / Inf / huge values when they hit an exponent)
      const n = 1 + intBelow(random, 8);
      for (let i = 0; i < n; i++) weights[intBelow(random, weights.length)] = pick(random, [0xff, 0x7f, 0x80, 0x00, intBelow(random, 256)]);
      return { files: { json, weights }, mutation: `weights.bin: ${n} byte flip(s)` };
    }
    case 8: { // short or long shard
      if (random() < 0.5) {
        const at = intBelow(random, weights.length);
        return { files: { json, weights: weights.subarray(0, at) }, mutation: `weights.bin truncated at ${at}/${weights.length}` };
      }
      const extra = 1 + intBelow(random, 64);
      return { files: { json, weights: Buffer.concat([weights, Buffer.alloc(extra, 0x41)]) }, mutation: `weights.bin + ${extra} bytes` };
    }
    default: { // manifest paths: escapes, missing files, several shards
      const root = JSON.parse(json);
      const paths: string[] = root.weightsManifest[0].paths;
      const choice = intBelow(random, 4);
      if (choice === 0) { paths[0] = pick(random, ['../weights.bin', '/etc/hostname', `${'a/'.repeat(3)}../../../../outside.bin`, 'missing.bin', '.', '', 'weights.bin/']); return { files: { json: JSON.stringify(root), weights }, mutation: `paths[0] = ${paths[0]}` }; }
      if (choice === 1) { paths.push('weights.bin'); return { files: { json: JSON.stringify(root), weights }, mutation: 'paths listed twice' }; }
      const cut = intBelow(random, weights.length);
      root.weightsManifest[0].paths = ['a.bin', 'b.bin'];
      return { files: { json: JSON.stringify(root), weights: Buffer.alloc(0), extra: { 'a.bin': weights.subarray(0, cut), 'b.bin': weights.subarray(cut) } }, mutation: `split into two shards at ${cut}` };
    }
  }
}

function writeModelCase(dir: string, files: ModelFiles): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.json'), files.json, files.json.length > 0 && /[\u0080-\u00ff]/.test(files.json) ? 'latin1' : 'utf8');
  if (files.weights.length > 0 || !files.extra) fs.writeFileSync(path.join(dir, 'weights.bin'), files.weights);
  for (const [name, bytes] of Object.entries(files.extra ?? {})) fs.writeFileSync(path.join(dir, name), bytes);
  return path.join(dir, 'model.json');
}

async function runModelInProcess(modelJson: string): Promise<{ outcome: Outcome; detail?: string }> {
  try {
    const loaded = await loadModelSource(modelJson);
    try {
      inspectModel(loaded.model, loaded.source);
    } finally {
      loaded.model.dispose();
    }
    return { outcome: 'accepted' };
  } catch (error) {
    if (error instanceof PasInputError) return { outcome: 'refused', detail: error.message };
    return { outcome: 'crash', detail: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack?.split('\n').slice(1, 4).join('\n')}` : String(error) };
  }
}

// ---- IDX mutations --------------------------------------------------------------------------

function idxBytes(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d >>> 0, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

/** A valid IDX folder of `count` 8x8 images (train) and 6 (test), labels 0..2. */
export function writeBaseIdx(dir: string, count = 24): { images: Buffer; labels: Buffer; testImages: Buffer; testLabels: Buffer } {
  const pixels = Uint8Array.from({ length: count * 64 }, (_, i) => (i * 37) % 256);
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 3);
  const base = {
    images: idxBytes([count, 8, 8], pixels),
    labels: idxBytes([count], labels),
    testImages: idxBytes([6, 8, 8], pixels.subarray(0, 6 * 64)),
    testLabels: idxBytes([6], labels.subarray(0, 6)),
  };
  writeIdxCase(dir, base);
  return base;
}

function writeIdxCase(dir: string, files: { images: Buffer; labels: Buffer; testImages: Buffer; testLabels: Buffer }): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'train-images-idx3-ubyte'), files.images);
  fs.writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), files.labels);
  fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), files.testImages);
  fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), files.testLabels);
}

function mutateIdxFile(random: Random, bytes: Buffer): { bytes: Buffer; mutation: string } {
  const out = Buffer.from(bytes);
  const kind = intBelow(random, 8);
  switch (kind) {
    case 0: { const i = intBelow(random, Math.min(out.length, 16)); out[i] = intBelow(random, 256); return { bytes: out, mutation: `header byte ${i} = ${out[i]}` }; }
    case 1: { const d = intBelow(random, Math.max(1, out[3] || 1)); const v = pick(random, [0, 1, 2, 255, 0xffffffff, 0x7fffffff, 65536, intBelow(random, 100)]); if (out.length >= 8 + 4 * d) out.writeUInt32BE(v >>> 0, 4 + 4 * d); return { bytes: out, mutation: `dim ${d} = ${v}` }; }
    case 2: { const at = intBelow(random, out.length); return { bytes: out.subarray(0, at), mutation: `truncated at ${at}/${bytes.length}` }; }
    case 3: { const n = 1 + intBelow(random, 100); return { bytes: Buffer.concat([out, Buffer.alloc(n, 7)]), mutation: `+${n} bytes` }; }
    case 4: { out[3] = pick(random, [0, 1, 2, 3, 4, 255]); return { bytes: out, mutation: `rank byte = ${out[3]}` }; }
    case 5: { out[2] = pick(random, [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff]); return { bytes: out, mutation: `dtype byte = 0x${out[2].toString(16)}` }; }
    case 6: { const gz = gzipSync(out); const cut = random() < 0.5 ? intBelow(random, gz.length) : gz.length; return { bytes: gz.subarray(0, cut), mutation: `gzipped${cut < gz.length ? `, cut at ${cut}/${gz.length}` : ''}` }; }
    default: { for (let i = 0; i < 4; i++) out[16 + intBelow(random, Math.max(1, out.length - 16))] = 0xff; return { bytes: out, mutation: 'data bytes = 0xff (labels out of range)' }; }
  }
}

async function runIdxInProcess(dir: string): Promise<{ outcome: Outcome; detail?: string }> {
  try {
    await readIdxImagesAndLabels(path.join(dir, 'train-images-idx3-ubyte'), path.join(dir, 'train-labels-idx1-ubyte'), 3);
    return { outcome: 'accepted' };
  } catch (error) {
    if (error instanceof PasInputError) return { outcome: 'refused', detail: error.message };
    return { outcome: 'crash', detail: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

// ---- CLI -----------------------------------------------------------------------------------

function runCliCase(args: string[], inputDir: string, timeoutMs: number): { outcome: Outcome; exitCode: number | null; detail?: string } {
  const before = fingerprintFolder(inputDir);
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const after = fingerprintFolder(inputDir);
  const stderrTail = (result.stderr ?? '').trim().split('\n').slice(-3).join(' | ').slice(0, 400);
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { outcome: 'timeout', exitCode: null, detail: stderrTail };
  if (JSON.stringify(before) !== JSON.stringify(after)) return { outcome: 'wroteInput', exitCode: result.status, detail: stderrTail };
  if (result.status === 0) return { outcome: 'accepted', exitCode: 0 };
  if (result.status === 2 && !/internal error/.test(result.stderr)) return { outcome: 'refused', exitCode: 2, detail: stderrTail };
  return { outcome: 'crash', exitCode: result.status, detail: stderrTail };
}

/** Runs the whole fuzz campaign and returns its counts; failures keep their mutation for replay. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const log = options.log ?? (() => undefined);
  await tf.setBackend('cpu');
  tf.enableProdMode();
  fs.mkdirSync(options.workDir, { recursive: true });
  const random = makeRandom(options.seed);
  const results: CaseResult[] = [];
  const record = (result: CaseResult) => {
    results.push(result);
    if (result.outcome !== 'accepted' && result.outcome !== 'refused') log(`FAIL ${result.target}/${result.via}: ${result.mutation} -> ${result.outcome} ${result.detail ?? ''}`);
  };

  const baseFolders = await writeBaseModels(path.join(options.workDir, 'bases'));
  const bases: ModelFiles[] = baseFolders.map((folder) => ({
    json: fs.readFileSync(path.join(folder, 'model.json'), 'utf8'),
    weights: fs.readFileSync(path.join(folder, 'weights.bin')),
  }));
  // The CLI cases are spread evenly over the run.
  const cliEveryModel = options.cliModelCases > 0 ? Math.max(1, Math.floor(options.modelCases / options.cliModelCases)) : Infinity;
  const caseDir = path.join(options.workDir, 'model-case', 'model');
  for (let i = 0; i < options.modelCases; i++) {
    const { files, mutation } = mutateModel(random, pick(random, bases));
    const modelJson = writeModelCase(caseDir, files);
    if (process.env.PAS_FUZZ_VERBOSE) log(`model #${i} ${mutation}`);
    const t0 = Date.now();
    const inProcess = await runModelInProcess(modelJson);
    record({ target: 'model', via: 'inProcess', mutation: `#${i} ${mutation}`, ...inProcess, detail: inProcess.outcome === 'crash' ? inProcess.detail : undefined, ms: Date.now() - t0 });
    if (i % cliEveryModel === 0 && results.filter((r) => r.via === 'cli' && r.target === 'model').length < options.cliModelCases) {
      const t1 = Date.now();
      const command = i % (2 * cliEveryModel) === 0 ? ['inspect', modelJson, '--backend', 'cpu'] : ['reparam', modelJson, '--backend', 'cpu', '--out', path.join(options.workDir, 'model-case', `out-${i}`)];
      const cli = runCliCase(command, caseDir, options.cliTimeoutMs);
      record({ target: 'model', via: 'cli', mutation: `#${i} ${command[0]} ${mutation}`, ...cli, detail: cli.outcome === 'refused' ? undefined : cli.detail, ms: Date.now() - t1 });
      fs.rmSync(path.join(options.workDir, 'model-case', `out-${i}`), { recursive: true, force: true });
    }
    if ((i + 1) % 250 === 0) log(`model cases: ${i + 1}/${options.modelCases}`);
  }

  if ((options.topologyCases ?? 0) > 0) {
    const topology = await runTopologyFuzz({ random, cases: options.topologyCases!, cliCases: options.cliTopologyCases ?? 0, cliTimeoutMs: options.cliTimeoutMs, workDir: options.workDir, log });
    for (const result of topology) record(result);
  }

  const idxDir = path.join(options.workDir, 'idx-case');
  const baseIdx = writeBaseIdx(idxDir);
  const cliEveryIdx = options.cliIdxCases > 0 ? Math.max(1, Math.floor(options.idxCases / options.cliIdxCases)) : Infinity;
  for (let i = 0; i < options.idxCases; i++) {
    const mutateImages = random() < 0.5;
    const { bytes, mutation } = mutateIdxFile(random, mutateImages ? baseIdx.images : baseIdx.labels);
    writeIdxCase(idxDir, { ...baseIdx, ...(mutateImages ? { images: bytes } : { labels: bytes }) });
    const description = `#${i} ${mutateImages ? 'train images' : 'train labels'}: ${mutation}`;
    const t0 = Date.now();
    const inProcess = await runIdxInProcess(idxDir);
    record({ target: 'idx', via: 'inProcess', mutation: description, ...inProcess, detail: inProcess.outcome === 'crash' ? inProcess.detail : undefined, ms: Date.now() - t0 });
    if (i % cliEveryIdx === 0 && results.filter((r) => r.via === 'cli' && r.target === 'idx').length < options.cliIdxCases) {
      // A batch larger than any dataset here: valid data is refused right after it is read, so
      // no training runs and nothing is written; the data readers are what is exercised.
      const out = path.join(options.workDir, `idx-out-${i}`);
      const t1 = Date.now();
      const cli = runCliCase(['search', 'builtin:default', '--input', '8,8,1', '--classes', '3', '--data', `idx:${idxDir}`, '--batch-size', '100000', '--backend', 'cpu', '--out', out], idxDir, options.cliTimeoutMs);
      const wroteOutput = fs.existsSync(out);
      record({ target: 'idx', via: 'cli', mutation: description, ...cli, ...(wroteOutput ? { outcome: 'crash' as Outcome, detail: `left an output folder: ${out}` } : {}), detail: cli.outcome === 'refused' && !wroteOutput ? undefined : cli.detail, ms: Date.now() - t1 });
      fs.rmSync(out, { recursive: true, force: true });
    }
  }

  const byTarget: Record<string, Record<string, number>> = {};
  const exitCodes: Record<string, number> = {};
  for (const r of results) {
    const key = `${r.target}/${r.via}`;
    byTarget[key] ??= {};
    byTarget[key][r.outcome] = (byTarget[key][r.outcome] ?? 0) + 1;
    if (r.via === 'cli') exitCodes[String(r.exitCode)] = (exitCodes[String(r.exitCode)] ?? 0) + 1;
  }
  return {
    seed: options.seed,
    totalCases: results.length,
    byTarget,
    exitCodes,
    failures: results.filter((r) => r.outcome !== 'accepted' && r.outcome !== 'refused'),
    wallSeconds: (Date.now() - started) / 1000,
  };
}
