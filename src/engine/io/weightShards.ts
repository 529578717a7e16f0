/**
 * Reading the binary weight shards of a Layers model into tfjs ModelArtifacts. Shard paths come
 * from an untrusted manifest, so every path is resolved and confined to the model's folder before
 * any shard is opened, shard sizes must match the manifest exactly, and decoded weights must be
 * finite.
 */
import type * as tf from '@tensorflow/tfjs';
import { constants as fsConstants, promises as fsp } from 'fs';
import * as path from 'path';
import { PasInputError } from '../errors';
import { describeFsError, errorCode } from './fsErrors';
import { readCheckedModelJson, type CheckedModelJson } from './modelJson';
import type { CheckedWeightGroup, CheckedWeightSpec } from './weightManifest';

/** A shard path from the manifest, resolved and confirmed to be a regular file in the folder. */
interface ResolvedShard {
  manifestPath: string;
  /** The path as joined to the model folder, for messages. */
  displayPath: string;
  /** The symlink-free path that is opened. */
  realPath: string;
  size: number;
}

function isAbsoluteAnywhere(manifestPath: string): boolean {
  // A manifest written on Windows may hold "C:\\..." or "\\\\server\\..."; a URL scheme
  // ("file:", "http:") is not a relative file path either.
  return (
    path.posix.isAbsolute(manifestPath) ||
    path.win32.isAbsolute(manifestPath) ||
    /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(manifestPath)
  );
}

/**
 * Resolves one manifest path against the model folder, refusing (without opening anything)
 * absolute paths, `..` that climbs out of the folder, and symlinks whose target is outside it.
 */
async function resolveShard(manifestPath: string, modelDir: string, realModelDir: string, modelJsonPath: string): Promise<ResolvedShard> {
  const quoted = JSON.stringify(manifestPath);
  if (isAbsoluteAnywhere(manifestPath)) {
    throw new PasInputError(`weights shard path ${quoted} is absolute; shard paths must be relative to the model folder`, modelJsonPath);
  }
  // Both separators count, so a Windows-style "..\\x" is caught on every platform.
  const segments = manifestPath.split(/[\\/]+/).filter((segment) => segment !== '' && segment !== '.');
  let depth = 0;
  for (const segment of segments) {
    depth += segment === '..' ? -1 : 1;
    if (depth < 0) {
      throw new PasInputError(`weights shard path ${quoted} escapes the model folder with '..'`, modelJsonPath);
    }
  }
  if (depth === 0) throw new PasInputError(`weights shard path ${quoted} does not name a file`, modelJsonPath);
  const displayPath = path.join(modelDir, ...segments);

  let realPath: string;
  try {
    realPath = await fsp.realpath(displayPath);
  } catch (error) {
    const missing = errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR';
    throw new PasInputError(
      missing
        ? `weights shard ${quoted} listed in the manifest is missing (looked for ${displayPath})`
        : `cannot resolve weights shard ${quoted}: ${describeFsError(error)}`,
      modelJsonPath,
    );
  }
  const relative = path.relative(realModelDir, realPath);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw new PasInputError(
      `weights shard ${quoted} resolves (through a symbolic link) to ${realPath}, outside the model folder; refusing to read it`,
      modelJsonPath,
    );
  }
  let stats;
  try {
    stats = await fsp.lstat(realPath);
  } catch (error) {
    throw new PasInputError(`cannot inspect weights shard ${quoted}: ${describeFsError(error)}`, modelJsonPath);
  }
  if (!stats.isFile()) {
    throw new PasInputError(`weights shard ${quoted} is not a regular file`, modelJsonPath);
  }
  return { manifestPath, displayPath, realPath, size: stats.size };
}

function weightNames(group: CheckedWeightGroup, max = 4): string {
  const names = group.weights.map((weight) => weight.spec.name);
  return names.length > max ? `${names.slice(0, max).join(', ')}, ... (${names.length} weights)` : names.join(', ');
}

/** Refuses a group whose shards are not exactly as long as its weights, before reading any. */
function checkGroupSize(group: CheckedWeightGroup, shards: ResolvedShard[]): void {
  const actual = shards.reduce((sum, shard) => sum + shard.size, 0);
  if (actual === group.storedBytes) return;
  const subject = shards.length === 1 ? `is ${actual} bytes` : `(${shards.map((s) => s.manifestPath).join(', ')}) are ${actual} bytes together`;
  const problem =
    actual < group.storedBytes
      ? `${group.storedBytes - actual} bytes short: the shard is truncated or does not match model.json`
      : `${actual - group.storedBytes} bytes too long: the shard does not match model.json`;
  throw new PasInputError(
    `${subject}, but model.json lists weights (${weightNames(group)}) needing ${group.storedBytes} bytes; ${problem}`,
    shards[shards.length - 1].displayPath,
  );
}

async function readShardInto(shard: ResolvedShard, target: Uint8Array, offset: number, modelJsonPath: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    // O_NOFOLLOW: the real path was checked; if it has since been swapped for a symlink, fail.
    handle = await fsp.open(shard.realPath, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    const stats = await handle.stat();
    if (!stats.isFile() || stats.size !== shard.size) {
      throw new PasInputError(`weights shard ${JSON.stringify(shard.manifestPath)} changed while it was being read`, modelJsonPath);
    }
    let done = 0;
    while (done < shard.size) {
      const { bytesRead } = await handle.read(target, offset + done, shard.size - done, done);
      if (bytesRead === 0) {
        throw new PasInputError(`weights shard ${JSON.stringify(shard.manifestPath)} shrank while it was being read`, modelJsonPath);
      }
      done += bytesRead;
    }
  } catch (error) {
    if (error instanceof PasInputError) throw error;
    throw new PasInputError(`cannot read weights shard ${JSON.stringify(shard.manifestPath)}: ${describeFsError(error)}`, shard.displayPath);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Decodes one quantized weight from `stored` into float32 (or rounded int32) values. */
function dequantize(weight: CheckedWeightSpec, stored: DataView): Float32Array | Int32Array {
  const { quantization, dtype } = weight.spec;
  const out = dtype === 'int32' ? new Int32Array(weight.elementCount) : new Float32Array(weight.elementCount);
  const scale = quantization?.scale ?? 1;
  const min = quantization?.min ?? 0;
  for (let i = 0; i < weight.elementCount; i++) {
    let value: number;
    if (quantization?.dtype === 'float16') value = halfToFloat(stored.getUint16(2 * i, true));
    else if (quantization?.dtype === 'uint16') value = stored.getUint16(2 * i, true) * scale + min;
    else value = stored.getUint8(i) * scale + min;
    out[i] = dtype === 'int32' ? Math.round(value) : value;
  }
  return out;
}

/** Refuses a float32 weight holding NaN or infinite values, saying how many. */
function checkFinite(name: string, values: Float32Array, modelJsonPath: string): void {
  let nanCount = 0;
  let infiniteCount = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value !== value) nanCount++;
    else if (value === Infinity || value === -Infinity) infiniteCount++;
  }
  if (nanCount === 0 && infiniteCount === 0) return;
  const counts = [nanCount ? `${nanCount} NaN` : '', infiniteCount ? `${infiniteCount} infinite` : ''].filter(Boolean).join(' and ');
  throw new PasInputError(`weight ${name} has ${counts} values`, modelJsonPath);
}

/**
 * Lays the weights out one after another as tfjs expects (manifest order), dequantizing
 * quantized ones to plain float32/int32 and checking float32 values are finite.
 */
function decodeWeights(groups: CheckedWeightGroup[], stored: Uint8Array, modelJsonPath: string): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const weights = groups.flatMap((group) => group.weights);
  const decodedBytes = weights.reduce((sum, weight) => sum + weight.decodedBytes, 0);
  const needsCopy = weights.some((weight) => weight.spec.quantization !== undefined);
  const decoded = needsCopy ? new Uint8Array(decodedBytes) : stored;
  const specs: tf.io.WeightsManifestEntry[] = [];
  let storedOffset = 0;
  let decodedOffset = 0;
  for (const weight of weights) {
    const { quantization, ...plainSpec } = weight.spec;
    if (quantization) {
      const view = new DataView(stored.buffer, stored.byteOffset + storedOffset, weight.storedBytes);
      const values = dequantize(weight, view);
      decoded.set(new Uint8Array(values.buffer), decodedOffset);
    } else if (needsCopy) {
      decoded.set(stored.subarray(storedOffset, storedOffset + weight.storedBytes), decodedOffset);
    }
    if (plainSpec.dtype === 'float32') {
      const byteOffset = decoded.byteOffset + decodedOffset;
      // A bool weight earlier in the buffer can leave a float32 one unaligned; copy it then.
      const values =
        byteOffset % 4 === 0
          ? new Float32Array(decoded.buffer, byteOffset, weight.elementCount)
          : new Float32Array(decoded.slice(decodedOffset, decodedOffset + weight.decodedBytes).buffer);
      checkFinite(plainSpec.name, values, modelJsonPath);
    }
    specs.push(plainSpec);
    storedOffset += weight.storedBytes;
    decodedOffset += weight.decodedBytes;
  }
  const data =
    decoded.byteOffset === 0 && decoded.byteLength === decoded.buffer.byteLength
      ? (decoded.buffer as ArrayBuffer)
      : (decoded.slice().buffer as ArrayBuffer);
  return { specs, data };
}

/**
 * Reads a TF.js Layers model (model.json plus its binary weight shards) into ModelArtifacts whose
 * `weightData` is one ArrayBuffer holding every weight in `weightSpecs` order.
 *
 * Shard paths are resolved relative to the model.json folder; an absolute path, a `..` that
 * leaves the folder, or a path that resolves (via symlinks) outside it is refused before any
 * shard is opened. Each manifest group's shards must hold exactly the bytes its weights need.
 * Quantized weights (uint8, uint16, float16) are dequantized here, so the returned specs carry
 * no `quantization`. NaN or infinite float32 weights are refused.
 *
 * @throws PasInputError naming the model.json (or the shard) and the problem; see also
 *   {@link readModelTopology} for the checks of the JSON itself.
 */
export async function readModelArtifacts(modelJsonPath: string): Promise<tf.io.ModelArtifacts> {
  return readWeightsOfCheckedModel(await readCheckedModelJson(modelJsonPath), modelJsonPath);
}

/** {@link readModelArtifacts} for a model.json that has already been read and checked. */
export async function readWeightsOfCheckedModel(checked: CheckedModelJson, modelJsonPath: string): Promise<tf.io.ModelArtifacts> {
  const modelDir = path.dirname(path.resolve(modelJsonPath));
  let realModelDir: string;
  try {
    realModelDir = await fsp.realpath(modelDir);
  } catch (error) {
    throw new PasInputError(`cannot resolve the model folder: ${describeFsError(error)}`, modelJsonPath);
  }

  // Resolve and size-check every shard first, so nothing is read from a model that is refused.
  const shardsByGroup: ResolvedShard[][] = [];
  for (const group of checked.weightGroups) {
    const shards: ResolvedShard[] = [];
    for (const manifestPath of group.paths) shards.push(await resolveShard(manifestPath, modelDir, realModelDir, modelJsonPath));
    shardsByGroup.push(shards);
  }
  checked.weightGroups.forEach((group, index) => checkGroupSize(group, shardsByGroup[index]));

  const totalStored = checked.weightGroups.reduce((sum, group) => sum + group.storedBytes, 0);
  const stored = new Uint8Array(totalStored);
  let offset = 0;
  for (const shard of shardsByGroup.flat()) {
    await readShardInto(shard, stored, offset, modelJsonPath);
    offset += shard.size;
  }
  const { specs, data } = decodeWeights(checked.weightGroups, stored, modelJsonPath);

  const { json } = checked;
  return {
    modelTopology: json.modelTopology,
    weightSpecs: specs,
    weightData: data,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    ...(json.trainingConfig !== undefined ? { trainingConfig: json.trainingConfig } : {}),
    ...(json.userDefinedMetadata !== undefined ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
  };
}
