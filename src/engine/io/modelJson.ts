/**
 * Reading and validating a TF.js Layers model.json without its weights. Everything in the file
 * is untrusted: it is parsed with positions in the errors, and the topology and the weights
 * manifest are checked structurally before anything else (tfjs, the shard reader) uses them.
 */
import type * as tf from '@tensorflow/tfjs';
import { promises as fsp } from 'fs';
import { PasInputError } from '../errors';
import { describeFsError } from './fsErrors';
import { checkModelTopology, modelConfigOf, type TopologyLayer } from './layerGraph';
import { checkWeightsManifest, isPlainObject, type CheckedWeightGroup } from './weightManifest';

/** A model.json larger than this is refused unread; real ones are a few MB at most. */
export const MAX_MODEL_JSON_BYTES = 64 * 1024 * 1024;

/** A parsed and validated model.json, with what the checks derived from it. */
export interface CheckedModelJson {
  json: tf.io.ModelJSON;
  /** Every layer of the topology, nested models flattened depth-first. */
  layers: TopologyLayer[];
  weightGroups: CheckedWeightGroup[];
}

function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `line ${line} column ${column}`;
}

/** The position of a V8 JSON.parse error message, when it gives one. */
function reportedErrorPosition(error: unknown): number | undefined {
  const match = /at position (\d+)/.exec(error instanceof Error ? error.message : String(error));
  return match ? Number(match[1]) : undefined;
}

/** Whether `prefix` is valid JSON or could become valid JSON if more text followed. */
function isValidJsonPrefix(prefix: string): boolean {
  try {
    JSON.parse(prefix);
    return true;
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    const position = reportedErrorPosition(error);
    return /Unexpected end of JSON input/.test(message) || (position !== undefined && position >= prefix.trimEnd().length);
  }
}

/**
 * The offset of the first syntax error. V8 omits the position from some messages ("Unexpected
 * token 'x', ... is not valid JSON"); then the longest valid prefix is found by bisection (a prefix
 * is valid up to the error and invalid after it). Only runs on the error path.
 */
function jsonErrorPosition(text: string, error: unknown): number {
  const reported = reportedErrorPosition(error);
  if (reported !== undefined) return reported;
  let valid = 0;
  let invalid = text.length;
  while (invalid - valid > 1) {
    const middle = Math.floor((valid + invalid) / 2);
    if (isValidJsonPrefix(text.slice(0, middle))) valid = middle;
    else invalid = middle;
  }
  return valid;
}

/** Parses JSON text; a syntax error is reported with its line, column and byte offset. */
function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const position = jsonErrorPosition(text, error);
    const end = text.trimEnd().length;
    if (/Unexpected end of JSON input/.test(message) || position >= end) {
      throw new PasInputError(`the JSON is truncated: it ends at ${lineAndColumn(text, end)} (byte ${end}) before it is complete`, file);
    }
    // V8 quotes (part of) the input in some messages; the position says more.
    const reason = message.replace(/, (\.\.\.)?".*$/s, '').replace(/ in JSON at position \d+.*$/s, '');
    throw new PasInputError(`invalid JSON at ${lineAndColumn(text, position)} (byte ${position}): ${reason}`, file);
  }
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    const stats = await fsp.stat(file);
    if (!stats.isFile()) throw new PasInputError('is not a regular file', file);
    if (stats.size > MAX_MODEL_JSON_BYTES) {
      throw new PasInputError(`is ${stats.size} bytes; a model.json over ${MAX_MODEL_JSON_BYTES / 1024 ** 2} MiB is refused`, file);
    }
    text = await fsp.readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof PasInputError) throw error;
    throw new PasInputError(`cannot read the model file: ${describeFsError(error)}`, file);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') throw new PasInputError('the file is empty', file);
  return parseJsonText(text, file);
}

/**
 * Validates parsed model.json contents: a Layers model (not a graph model, not some other JSON)
 * whose topology and weights manifest pass the structural checks. `file` is used in messages.
 */
export function checkModelJson(parsed: unknown, file: string): CheckedModelJson {
  if (!isPlainObject(parsed)) throw new PasInputError('is not a TF.js model.json: the JSON is not an object', file);
  const { format, modelTopology } = parsed;
  const isGraphModel =
    format === 'graph-model' || (isPlainObject(modelTopology) && (Array.isArray(modelTopology.node) || 'versions' in modelTopology));
  if (isGraphModel) {
    throw new PasInputError(
      'is a TF.js graph model; PaS needs a Layers model (convert from Keras with tensorflowjs_converter --output_format=tfjs_layers_model)',
      file,
    );
  }
  if (format !== undefined && format !== 'layers-model') {
    throw new PasInputError(`has format ${JSON.stringify(format)}; PaS needs a "layers-model"`, file);
  }
  if (!isPlainObject(modelTopology)) {
    throw new PasInputError('is not a TF.js Layers model: it has no modelTopology object', file);
  }
  const layers = checkModelTopology(modelConfigOf(modelTopology), file);
  const weightGroups = checkWeightsManifest(parsed.weightsManifest, file);
  return { json: parsed as unknown as tf.io.ModelJSON, layers, weightGroups };
}

/** Reads, parses and validates a model.json; see {@link readModelTopology}. */
export async function readCheckedModelJson(modelJsonPath: string): Promise<CheckedModelJson> {
  return checkModelJson(await readJsonFile(modelJsonPath), modelJsonPath);
}

/**
 * Reads a TF.js Layers model.json and returns it parsed and validated, without reading any
 * weight shard: for quick inspection of a model (its layers, its manifest).
 *
 * Checks: the file is readable and valid JSON (errors give line and column); it is a Layers model
 * (has `modelTopology`; not a graph model); the topology is a Sequential/Model/Functional with a
 * sound layer graph (no dangling inbound node, no cycle, no Keras 3 node format); the weights
 * manifest has sane shapes, dtypes and a total size under 2 GiB. Whether the layer classes are
 * supported by PaS is NOT checked here (an inspector may want to show an unsupported model);
 * {@link loadLayersModelFromFile} checks that.
 *
 * @throws PasInputError naming `modelJsonPath` and the problem.
 */
export async function readModelTopology(modelJsonPath: string): Promise<tf.io.ModelJSON> {
  return (await readCheckedModelJson(modelJsonPath)).json;
}
