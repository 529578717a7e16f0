/**
 * Helpers of the ONNX tests: the committed fixtures (scripts/export-onnx-fixtures.py), onnxruntime
 * sessions, and relative comparison. Not a test file.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { REPO_ROOT } from './cli';
import { maxAbs, maxAbsDiff } from './tensors';

export const FIXTURE_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'onnx');

/** The fixture models: torchvision CNNs exported by PyTorch with random weights. */
export const FIXTURES = ['resnet18-slim', 'mobilenetv2', 'efficientnet-b0', 'densenet-tiny', 'operator-mix', 'pooling-variants', 'grouped-convs', 'shufflenet-tiny'] as const;
export type FixtureName = (typeof FIXTURES)[number];

/** PyTorch's reference for a fixture: an NCHW input batch, its output, its MACs per image. */
export interface FixtureReference {
  inputShape: number[];
  input: number[];
  outputShape: number[];
  output: number[];
  macsPerImage: number;
}

export const fixturePath = (name: FixtureName) => path.join(FIXTURE_DIR, `${name}.onnx`);

export function fixtureReference(name: FixtureName): FixtureReference {
  return JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, `${name}.ref.json`), 'utf8'));
}

/** Runs an ONNX model (file or bytes) in onnxruntime on one NCHW input. */
export async function runOnnx(model: string | Uint8Array, input: Float32Array, shape: number[]): Promise<{ output: Float32Array; outputShape: readonly number[]; inputNames: readonly string[]; outputNames: readonly string[] }> {
  // One thread, no spinning: the test machines are shared, and ORT's pool spins while it waits.
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  try {
    const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, shape) });
    const out = result[session.outputNames[0]];
    return { output: Float32Array.from(out.data as Float32Array), outputShape: out.dims, inputNames: session.inputNames, outputNames: session.outputNames };
  } finally {
    await session.release();
  }
}

/** max |a - b| / max |b|: the error relative to the output's scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  const scale = maxAbs(expected);
  if (!(scale > 0)) return Infinity;
  return maxAbsDiff(actual, expected) / scale;
}

/** NCHW -> NHWC of a dense batch (the engine's layout). */
export function nchwToNhwc(values: ArrayLike<number>, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + ch] = values[((b * c + ch) * h + y) * w + x];
  return out;
}
