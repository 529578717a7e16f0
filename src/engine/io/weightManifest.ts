/**
 * Validation of the `weightsManifest` of a model.json, which is untrusted: every weight spec is
 * checked (name, shape, dtype, quantization) and its byte size computed before any shard is read,
 * so that a hostile manifest cannot make the loader allocate or read arbitrary amounts of data.
 */
import type * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';

/**
 * Upper bound on the decoded weights of one model (2 GiB). Far above any network PaS prunes
 * (ResNet-50 is ~100 MB), and low enough to refuse a manifest that would exhaust memory.
 */
export const MAX_WEIGHT_BYTES = 2 * 1024 ** 3;

/** Weight dtypes PaS loads. `string` and `complex64` weights never occur in conv nets. */
const BYTES_PER_DTYPE: ReadonlyMap<string, number> = new Map([
  ['float32', 4],
  ['int32', 4],
  ['bool', 1],
]);

/** Storage size of quantized weights; they are dequantized to float32 (or int32) on load. */
const BYTES_PER_QUANTIZED_DTYPE: ReadonlyMap<string, number> = new Map([
  ['uint8', 1],
  ['uint16', 2],
  ['float16', 2],
]);

/** One validated weight spec with its sizes precomputed. */
export interface CheckedWeightSpec {
  spec: tf.io.WeightsManifestEntry;
  elementCount: number;
  /** Bytes the weight occupies in its shard (the quantized size when quantized). */
  storedBytes: number;
  /** Bytes after dequantization, as handed to tfjs. */
  decodedBytes: number;
}

/** One manifest group: the shard files and the weights stored in them, in order. */
export interface CheckedWeightGroup {
  paths: string[];
  weights: CheckedWeightSpec[];
  storedBytes: number;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function checkShape(name: string, shape: unknown, file: string): number {
  if (!Array.isArray(shape)) {
    throw new PasInputError(`weight ${name} has shape ${describeValue(shape)}, which is not a list of sizes`, file);
  }
  let elementCount = 1;
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 0) {
      throw new PasInputError(
        `weight ${name} has shape ${describeValue(shape)}: size ${describeValue(dim)} is not a non-negative integer`,
        file,
      );
    }
    elementCount *= dim;
    // Past the limit the exact count no longer matters, and stopping keeps it a safe integer.
    if (elementCount > MAX_WEIGHT_BYTES) {
      throw new PasInputError(
        `weight ${name} has shape ${describeValue(shape)}, over ${MAX_WEIGHT_BYTES / 1024 ** 3} GiB; PaS refuses models this large`,
        file,
      );
    }
  }
  return elementCount;
}

function checkWeightSpec(raw: unknown, file: string): CheckedWeightSpec {
  if (!isPlainObject(raw) || typeof raw.name !== 'string' || raw.name === '') {
    throw new PasInputError(`weightsManifest has a weight entry without a name: ${describeValue(raw)}`, file);
  }
  const name = raw.name;
  const elementCount = checkShape(name, raw.shape, file);
  const dtype = raw.dtype;
  const bytesPerElement = typeof dtype === 'string' ? BYTES_PER_DTYPE.get(dtype) : undefined;
  if (bytesPerElement === undefined) {
    throw new PasInputError(
      `weight ${name} has dtype ${describeValue(dtype)}; PaS loads float32, int32 and bool weights`,
      file,
    );
  }
  const spec: tf.io.WeightsManifestEntry = {
    name,
    shape: (raw.shape as number[]).slice(),
    dtype: dtype as tf.io.WeightsManifestEntry['dtype'],
  };
  if (typeof raw.group === 'string') spec.group = raw.group as tf.io.WeightGroup;

  let storedBytes = elementCount * bytesPerElement;
  if (raw.quantization !== undefined && raw.quantization !== null) {
    const quantization = raw.quantization;
    const quantizedDtype = isPlainObject(quantization) ? quantization.dtype : undefined;
    const bytesPerStored = typeof quantizedDtype === 'string' ? BYTES_PER_QUANTIZED_DTYPE.get(quantizedDtype) : undefined;
    if (!isPlainObject(quantization) || bytesPerStored === undefined || dtype === 'bool') {
      throw new PasInputError(
        `weight ${name} has unsupported quantization ${describeValue(quantization)}; ` +
          'PaS dequantizes uint8, uint16 and float16 float32/int32 weights',
        file,
      );
    }
    if (quantizedDtype !== 'float16') {
      // Affine quantization: value = stored * scale + min. Non-finite parameters would produce
      // NaN or infinite weights that the finiteness check after decoding could not attribute.
      for (const key of ['scale', 'min'] as const) {
        if (typeof quantization[key] !== 'number' || !Number.isFinite(quantization[key])) {
          throw new PasInputError(
            `weight ${name} has ${quantizedDtype} quantization with ${key} ${describeValue(quantization[key])}, not a finite number`,
            file,
          );
        }
      }
    }
    spec.quantization = {
      dtype: quantizedDtype as 'uint8' | 'uint16' | 'float16',
      ...(quantizedDtype !== 'float16' ? { scale: quantization.scale as number, min: quantization.min as number } : {}),
    };
    storedBytes = elementCount * bytesPerStored;
  }
  return { spec, elementCount, storedBytes, decodedBytes: elementCount * bytesPerElement };
}

/**
 * Validates a parsed `weightsManifest` (a missing one means "no weights") and returns its groups
 * with byte sizes. Refuses: entries that are not `{paths, weights}`, weights without a name or with
 * a duplicate name, shapes with negative or non-integer sizes, unsupported dtypes or quantization,
 * and a total decoded size above {@link MAX_WEIGHT_BYTES}. Shard paths are only checked to be
 * non-empty strings here; where they point is checked when the shards are resolved.
 */
export function checkWeightsManifest(manifest: unknown, file: string): CheckedWeightGroup[] {
  if (manifest === undefined || manifest === null) return [];
  if (!Array.isArray(manifest)) {
    throw new PasInputError('weightsManifest is not a list of {paths, weights} groups', file);
  }
  const seenNames = new Set<string>();
  let totalDecodedBytes = 0;
  const groups = manifest.map((rawGroup, groupIndex): CheckedWeightGroup => {
    if (!isPlainObject(rawGroup) || !Array.isArray(rawGroup.paths) || !Array.isArray(rawGroup.weights)) {
      throw new PasInputError(`weightsManifest[${groupIndex}] is not a {paths, weights} group`, file);
    }
    const paths = rawGroup.paths.map((shardPath) => {
      if (typeof shardPath !== 'string' || shardPath === '' || shardPath.includes('\0')) {
        throw new PasInputError(`weightsManifest[${groupIndex}] has an invalid shard path ${describeValue(shardPath)}`, file);
      }
      return shardPath;
    });
    const weights = rawGroup.weights.map((rawSpec) => checkWeightSpec(rawSpec, file));
    if (paths.length === 0 && weights.some((weight) => weight.storedBytes > 0)) {
      throw new PasInputError(`weightsManifest[${groupIndex}] lists weights but no shard files`, file);
    }
    for (const weight of weights) {
      if (seenNames.has(weight.spec.name)) {
        throw new PasInputError(`weightsManifest lists weight ${weight.spec.name} twice`, file);
      }
      seenNames.add(weight.spec.name);
      totalDecodedBytes += weight.decodedBytes;
    }
    if (totalDecodedBytes > MAX_WEIGHT_BYTES) {
      throw new PasInputError(
        `the weights need over ${MAX_WEIGHT_BYTES / 1024 ** 3} GiB; PaS refuses models this large`,
        file,
      );
    }
    return { paths, weights, storedBytes: weights.reduce((sum, weight) => sum + weight.storedBytes, 0) };
  });
  return groups;
}
