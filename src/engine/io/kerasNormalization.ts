/**
 * Keras' Normalization layer keeps adapt's running `count` as int64, which the converter writes
 * as int32. The engine's KerasNormalization holds it as float32 (the engine's weight graph is
 * float32 throughout, and count plays no part in the computation), so the loader turns those
 * int32 count weights into float32 values in place: both take 4 bytes, so no offset moves.
 */
import type * as tf from '@tensorflow/tfjs';
import { layerObjectsOfClass } from './layerGraph';
import '../layers/registered';

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

export function normalizationCountsAsFloat<T extends { modelTopology: {}; weightSpecs: tf.io.WeightsManifestEntry[]; weightData: ArrayBuffer }>(loadable: T): T {
  const layers = new Set(layerObjectsOfClass(loadable.modelTopology, 'Normalization').flatMap((layer) => (typeof layer.config.name === 'string' ? [layer.config.name] : [])));
  if (layers.size === 0) return loadable;
  const isCount = (name: string) => [...layers].some((layer) => name === `${layer}/count` || name.endsWith(`/${layer}/count`));
  if (!loadable.weightSpecs.some((spec) => spec.dtype === 'int32' && isCount(spec.name))) return loadable;
  const data = loadable.weightData.slice(0);
  const view = new DataView(data);
  const specs: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of loadable.weightSpecs) {
    const bytes = BYTES_PER_ELEMENT[spec.dtype];
    if (bytes === undefined) return loadable; // a dtype of unknown size: leave the weights as they are
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'int32' && isCount(spec.name)) {
      for (let i = 0; i < count; i++) view.setFloat32(offset + 4 * i, view.getInt32(offset + 4 * i, true), true);
      specs.push({ ...spec, dtype: 'float32' });
    } else specs.push(spec);
    offset += count * bytes;
  }
  return { ...loadable, weightSpecs: specs, weightData: data };
}
