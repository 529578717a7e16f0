/**
 * Keras' Conv2D takes `groups` (RegNet, ResNeXt in keras.applications); tfjs-layers' Conv2D
 * ignores it and then refuses the grouped kernel's shape ([kh, kw, in/groups, out]). Such layers
 * load as the engine's GroupedConv2D, which computes exactly that convolution.
 */
import { layerObjectsOfClass } from './layerGraph';
import '../layers/registered';

const grouped = (topology: unknown) => layerObjectsOfClass(topology, 'Conv2D').filter((layer) => typeof layer.config.groups === 'number' && layer.config.groups > 1);

/** The topology, as a rewritten copy where it has grouped Conv2D layers (the input is not changed). */
export function mapGroupedConvs<T extends {}>(modelTopology: T): T {
  if (grouped(modelTopology).length === 0) return modelTopology;
  const copy = structuredClone(modelTopology);
  for (const layer of grouped(copy)) layer.class_name = 'GroupedConv2D';
  return copy;
}
