/**
 * Topology fuzzing: the architecture families of test/support/families.ts (concatenations,
 * squeeze-excitation, separable and transposed convs, RepVGG blocks, unknown layers), saved as
 * model.json, with their graphs mutated: layer configs (kernel sizes, strides, paddings, axes,
 * reshape targets, activations), classes swapped for look-alikes (Add / Multiply / Concatenate),
 * inbound nodes rewired (shape clashes, cycles, duplicated inputs), layers deleted, outputs moved
 * to inner layers. Every case must end in a clean accept or a PasInputError (exit 2 through the
 * CLI): `inspect` and, when it accepts, a full deployment (reparameterize + check). A crash, a
 * hang, exit 3 (a deployment that computes something else) or a write into the input is a bug.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { deployModel, EQUIVALENCE_TOLERANCE } from '../../src/engine/deploy';
import { PasInputError } from '../../src/engine/errors';
import { inspectModel } from '../../src/engine/inspect';
import { saveLayersModelToDir } from '../../src/engine/io';
import { imageInputShape, loadModelSource } from '../../src/engine/model';
import { CLI, fingerprintFolder, REPO_ROOT } from '../support/cli';
import { FAMILIES } from '../support/families';
import type { CaseResult, Outcome } from './fuzzing';

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];
const intBelow = (random: Random, n: number) => Math.floor(random() * n);

interface FamilyBase {
  family: string;
  json: string;
  /** Shard file name -> bytes. */
  shards: Record<string, Buffer>;
}

/** Every family model, saved by the engine's saver. */
export async function writeFamilyBases(dir: string): Promise<FamilyBase[]> {
  const bases: FamilyBase[] = [];
  fs.mkdirSync(dir, { recursive: true });
  for (const [index, family] of FAMILIES.entries()) {
    const folder = path.join(dir, `family-${family.name}`);
    const model = family.build(500 + index);
    await saveLayersModelToDir(model, folder, { overwrite: true });
    model.dispose();
    const json = fs.readFileSync(path.join(folder, 'model.json'), 'utf8');
    const shards: Record<string, Buffer> = {};
    for (const group of JSON.parse(json).weightsManifest) for (const p of group.paths) shards[p] = fs.readFileSync(path.join(folder, p));
    bases.push({ family: family.name, json, shards });
  }
  return bases;
}

const CONFIG_KEYS = ['kernel_size', 'strides', 'padding', 'dilation_rate', 'depth_multiplier', 'filters', 'units', 'pool_size', 'size', 'cropping', 'axis', 'target_shape', 'activation', 'max_value', 'use_bias', 'data_format', 'shared_axes', 'interpolation', 'center', 'scale'];
const HOSTILE_CONFIG_VALUES: unknown[] = [0, 1, 2, 3, 5, 7, -1, 100, [1, 1], [2, 2], [3, 1], [1, 7], [0, 0], [[1, 0], [0, 1]], [1, 1, 8], [4, 4, 3], [-1], 'same', 'valid', 'causal', 'channels_first', 'relu6', 'swish', 'hard_sigmoid', 'softmax', 'gelu', 'no_such_activation', true, false, null, 'x'];
const LOOK_ALIKE_CLASSES = [['Add', 'Multiply', 'Concatenate', 'Average', 'Maximum', 'Subtract'], ['Conv2D', 'DepthwiseConv2D', 'SeparableConv2D', 'Conv2DTranspose'], ['MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'UpSampling2D'], ['ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'Softmax', 'Activation'], ['Reshape', 'Flatten', 'Cropping2D', 'ZeroPadding2D']];

function layersOf(root: any): any[] {
  return root.modelTopology.model_config?.config?.layers ?? root.modelTopology.config?.layers ?? [];
}

/** One mutation of a family model's topology; returns its description. */
function mutateTopology(random: Random, root: any): string {
  const layers = layersOf(root);
  const inner = layers.filter((l) => l.class_name !== 'InputLayer');
  const layer = pick(random, inner);
  const kind = intBelow(random, 8);
  switch (kind) {
    case 0: case 1: { // a config value
      const keys = Object.keys(layer.config).filter((k) => CONFIG_KEYS.includes(k));
      const key = keys.length > 0 ? pick(random, keys) : pick(random, CONFIG_KEYS);
      const value = structuredClone(pick(random, HOSTILE_CONFIG_VALUES));
      layer.config[key] = value;
      return `${layer.name}.${key} = ${JSON.stringify(value)}`;
    }
    case 2: { // a look-alike class (same config, other meaning)
      const family = LOOK_ALIKE_CLASSES.find((f) => f.includes(layer.class_name)) ?? pick(random, LOOK_ALIKE_CLASSES);
      const before = layer.class_name;
      layer.class_name = pick(random, family);
      return `${layer.name}: class ${before} -> ${layer.class_name}`;
    }
    case 3: { // rewire an input to another layer: shape clashes, skips, cycles
      const target = pick(random, layers);
      const node = layer.inbound_nodes?.[0];
      if (!node || node.length === 0) return 'no-op (no inbound node)';
      const slot = intBelow(random, node.length);
      const before = node[slot][0];
      node[slot] = [target.name, 0, 0, {}];
      return `${layer.name} input ${slot}: ${before} -> ${target.name}`;
    }
    case 4: { // an extra or duplicated input
      const node = layer.inbound_nodes?.[0];
      if (!node || node.length === 0) return 'no-op (no inbound node)';
      node.push(structuredClone(random() < 0.5 ? node[0] : [pick(random, layers).name, 0, 0, {}]));
      return `${layer.name}: extra input ${node[node.length - 1][0]}`;
    }
    case 5: { // a layer deleted (its consumers now name a missing layer)
      layers.splice(layers.indexOf(layer), 1);
      return `deleted ${layer.name} (${layer.class_name})`;
    }
    case 6: { // the output moved to an inner layer (a feature-map output, a non-classifier)
      const config = root.modelTopology.model_config?.config ?? root.modelTopology.config;
      config.output_layers = [[layer.name, 0, 0]];
      return `output -> ${layer.name} (${layer.class_name})`;
    }
    default: { // a layer renamed (its consumers and its weights no longer find it)
      const before = layer.name;
      layer.name = layer.config.name = random() < 0.5 ? `${before}_renamed` : pick(random, layers).name;
      return `renamed ${before} -> ${layer.name}`;
    }
  }
}

function writeCase(dir: string, json: string, shards: Record<string, Buffer>): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.json'), json);
  for (const [name, bytes] of Object.entries(shards)) fs.writeFileSync(path.join(dir, name), bytes);
  return path.join(dir, 'model.json');
}

/** inspect, then (when accepted) a deployment of the unmasked model. */
async function runInProcess(modelJson: string): Promise<{ outcome: Outcome; detail?: string }> {
  try {
    const loaded = await loadModelSource(modelJson);
    try {
      inspectModel(loaded.model, loaded.source);
      const deployment = await deployModel(loaded.model, imageInputShape(loaded.model, loaded.source));
      deployment.deployed.dispose();
      // The CLI's `reparam --check` bound: a deployment that computes something else is a bug.
      if (!(deployment.maxAbsDiff <= EQUIVALENCE_TOLERANCE)) return { outcome: 'crash', detail: `deployed differs from the model by ${deployment.maxAbsDiff}` };
    } finally {
      loaded.model.dispose();
    }
    return { outcome: 'accepted' };
  } catch (error) {
    if (error instanceof PasInputError) return { outcome: 'refused', detail: error.message };
    return { outcome: 'crash', detail: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack?.split('\n').slice(1, 4).join('\n')}` : String(error) };
  }
}

function runCliCase(args: string[], inputDir: string, timeoutMs: number): { outcome: Outcome; exitCode: number | null; detail?: string } {
  const before = fingerprintFolder(inputDir);
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const stderrTail = (result.stderr ?? '').trim().split('\n').slice(-3).join(' | ').slice(0, 400);
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { outcome: 'timeout', exitCode: null, detail: stderrTail };
  if (JSON.stringify(before) !== JSON.stringify(fingerprintFolder(inputDir))) return { outcome: 'wroteInput', exitCode: result.status, detail: stderrTail };
  if (result.status === 0) return { outcome: 'accepted', exitCode: 0 };
  if (result.status === 2 && !/internal error/.test(result.stderr)) return { outcome: 'refused', exitCode: 2, detail: stderrTail };
  // Exit 3: `reparam --check` found the deployed model computing something else: a wrong fusion.
  return { outcome: 'crash', exitCode: result.status, detail: stderrTail };
}

/**
 * Runs `cases` topology mutations (1 to 3 each) over the family models, `cliCases` of them also
 * through the CLI (`inspect` and `reparam --check` in turn). Returns one result per run.
 */
export async function runTopologyFuzz(options: { random: Random; cases: number; cliCases: number; cliTimeoutMs: number; workDir: string; log?: (line: string) => void }): Promise<CaseResult[]> {
  const { random, workDir } = options;
  const bases = await writeFamilyBases(path.join(workDir, 'family-bases'));
  const results: CaseResult[] = [];
  const caseDir = path.join(workDir, 'topology-case', 'model');
  const cliEvery = options.cliCases > 0 ? Math.max(1, Math.floor(options.cases / options.cliCases)) : Infinity;
  for (let i = 0; i < options.cases; i++) {
    const base = pick(random, bases);
    const root = JSON.parse(base.json);
    const steps = 1 + intBelow(random, 3);
    const done: string[] = [];
    for (let s = 0; s < steps; s++) done.push(mutateTopology(random, root));
    const mutation = `#${i} ${base.family}: ${done.join('; ')}`;
    const modelJson = writeCase(caseDir, JSON.stringify(root), base.shards);
    if (process.env.PAS_FUZZ_VERBOSE) options.log?.(`topology ${mutation}`);
    const t0 = Date.now();
    const inProcess = await runInProcess(modelJson);
    results.push({ target: 'topology', via: 'inProcess', mutation, ...inProcess, detail: inProcess.outcome === 'crash' ? inProcess.detail : undefined, ms: Date.now() - t0 });
    if (i % cliEvery === 0 && results.filter((r) => r.via === 'cli').length < options.cliCases) {
      const out = path.join(workDir, 'topology-case', `out-${i}`);
      const command = (i / cliEvery) % 2 === 0 ? ['inspect', modelJson, '--backend', 'cpu'] : ['reparam', modelJson, '--check', '--backend', 'cpu', '--out', out];
      const t1 = Date.now();
      const cli = runCliCase(command, path.dirname(modelJson), options.cliTimeoutMs);
      results.push({ target: 'topology', via: 'cli', mutation: `${command[0]} ${mutation}`, ...cli, detail: cli.outcome === 'refused' ? undefined : cli.detail, ms: Date.now() - t1 });
      fs.rmSync(out, { recursive: true, force: true });
    }
    if ((i + 1) % 100 === 0) options.log?.(`topology cases: ${i + 1}/${options.cases}`);
  }
  return results;
}
