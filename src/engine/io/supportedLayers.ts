/**
 * Which layer classes load: every class TF.js can deserialize (its own, and the engine's DBC mask
 * layer once registered). PaS does not refuse a model for a class it has no rule for: such a
 * layer is opaque (see graph/layerRules) and the channels around it keep their full width.
 * A class TF.js cannot deserialize is refused here, before tfjs throws an obscure error.
 */
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';
import { MODEL_CLASS_NAMES, type TopologyLayer } from './layerGraph';

/** Whether TF.js has a class registered under this name (checked at call time: the engine registers its own). */
export function isLoadableLayerClass(className: string): boolean {
  return className in tf.serialization.SerializationMap.getMap().classNameMap || MODEL_CLASS_NAMES.has(className);
}

/**
 * Throws a {@link PasInputError} naming `file` and the first layer whose class TF.js cannot
 * deserialize (and how many more there are). Nested Sequential/Model/Functional layers are
 * containers; their own layers are checked.
 */
export function assertLayersLoadable(layers: TopologyLayer[], file: string): void {
  const unloadable = layers.filter((layer) => !isLoadableLayerClass(layer.className));
  if (unloadable.length === 0) return;
  const [first] = unloadable;
  const location = first.enclosingModels.length > 0 ? ` (in model '${first.enclosingModels.join("' > '")}')` : '';
  const more = unloadable.length > 1 ? ` (and ${unloadable.length - 1} more such layers)` : '';
  throw new PasInputError(
    `layer '${first.name}'${location} has class '${first.className}', which TF.js cannot load (no such layer class in TF.js 4)${more}`,
    file,
  );
}
