/**
 * BatchNormalization layers saved with `scale: false` or `center: false` (every BN of the Keras
 * InceptionV3) cannot be trained by tfjs 4.22: its training-mode batch norm reads the missing
 * gamma/beta variable and throws "Cannot read properties of undefined (reading 'read')".
 *
 * Before tfjs deserializes such a model, each of these layers is rewritten to `scale: true` /
 * `center: true` with gamma = 1 / beta = 0 added to the weights. y = 1 * x_hat + 0 is the same
 * function, bit for bit, and the added parameters fold away with the BN at deploy.
 */
import type * as tf from '@tensorflow/tfjs';
import { layerObjectsOfClass } from './layerGraph';

/** A topology and its weights, as handed to tfjs's loader. */
export interface LoadableWeights {
  modelTopology: {};
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

/** What a rewrite added, for messages and tests. */
export interface CompletedBatchNorm {
  layerName: string;
  added: ('gamma' | 'beta')[];
}

/** The channel count and name prefix of a BN layer, read from its moving-mean weight in the manifest. */
function movingMeanSpecOf(layerName: string, specs: tf.io.WeightsManifestEntry[]): tf.io.WeightsManifestEntry | undefined {
  // Names are "<layer>/moving_mean", possibly under enclosing scopes ("<outer>/<layer>/moving_mean").
  const matches = specs.filter((spec) => spec.name === `${layerName}/moving_mean` || spec.name.endsWith(`/${layerName}/moving_mean`));
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * Returns the topology (a rewritten copy; the input is not changed) and weights with every BN's
 * missing gamma (ones) and beta (zeros) made explicit, and the list of layers rewritten. A BN whose
 * moving mean the manifest does not list unambiguously is left as it is: the loader reports the
 * weight mismatch then.
 */
export function completeBatchNormParameters(loadable: LoadableWeights): LoadableWeights & { completed: CompletedBatchNorm[] } {
  const modelTopology = structuredClone(loadable.modelTopology);
  const configs = layerObjectsOfClass(modelTopology, 'BatchNormalization').map((layer) => layer.config);
  const addedSpecs: tf.io.WeightsManifestEntry[] = [];
  const addedValues: Float32Array[] = [];
  const completed: CompletedBatchNorm[] = [];
  for (const config of configs) {
    const missing: ('gamma' | 'beta')[] = [];
    if (config.scale === false) missing.push('gamma');
    if (config.center === false) missing.push('beta');
    if (missing.length === 0 || typeof config.name !== 'string') continue;
    const movingMean = movingMeanSpecOf(config.name, loadable.weightSpecs);
    if (!movingMean || movingMean.shape.length !== 1) continue;
    const channels = movingMean.shape[0];
    const prefix = movingMean.name.slice(0, -'moving_mean'.length);
    const added: ('gamma' | 'beta')[] = [];
    for (const weight of missing) {
      const name = `${prefix}${weight}`;
      // A manifest that already lists it (inconsistent with scale: false) is left to the mismatch check.
      if (loadable.weightSpecs.some((spec) => spec.name === name)) continue;
      addedSpecs.push({ name, shape: [channels], dtype: 'float32' });
      addedValues.push(new Float32Array(channels).fill(weight === 'gamma' ? 1 : 0));
      config[weight === 'gamma' ? 'scale' : 'center'] = true;
      added.push(weight);
    }
    if (added.length > 0) completed.push({ layerName: config.name, added });
  }
  if (addedSpecs.length === 0) return { ...loadable, completed: [] };

  const addedBytes = addedValues.reduce((sum, values) => sum + values.byteLength, 0);
  const weightData = new Uint8Array(loadable.weightData.byteLength + addedBytes);
  weightData.set(new Uint8Array(loadable.weightData), 0);
  let offset = loadable.weightData.byteLength;
  for (const values of addedValues) {
    weightData.set(new Uint8Array(values.buffer), offset);
    offset += values.byteLength;
  }
  return { modelTopology, weightSpecs: [...loadable.weightSpecs, ...addedSpecs], weightData: weightData.buffer, completed };
}
