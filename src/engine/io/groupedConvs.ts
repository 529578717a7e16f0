/**
 * Keras' Conv2D takes `groups` (RegNet, ResNeXt in keras.applications); tfjs-layers' Conv2D
 * ignores it and then refuses the grouped kernel's shape ([kh, kw, in/groups, out]). Such layers
 * load as the engine's GroupedConv2D, which computes exactly that convolution.
 */
import { isPlainObject } from './weightManifest';
import '../layers/groupedConv';

/** Every `{class_name: 'Conv2D', config: {groups > 1}}` in the topology, nested models included. */
function findGroupedConvs(node: unknown, found: Record<string, unknown>[]): void {
  if (Array.isArray(node)) {
    for (const item of node) findGroupedConvs(item, found);
    return;
  }
  if (!isPlainObject(node)) return;
  if (node.class_name === 'Conv2D' && isPlainObject(node.config) && typeof node.config.groups === 'number' && node.config.groups > 1) found.push(node);
  for (const value of Object.values(node)) findGroupedConvs(value, found);
}

/** The topology (a rewritten copy when needed; the input is not changed) and the names of the layers it maps. */
export function mapGroupedConvs<T extends {}>(modelTopology: T): { modelTopology: T; mapped: string[] } {
  const probe: Record<string, unknown>[] = [];
  findGroupedConvs(modelTopology, probe);
  if (probe.length === 0) return { modelTopology, mapped: [] };
  const copy = structuredClone(modelTopology);
  const layers: Record<string, unknown>[] = [];
  findGroupedConvs(copy, layers);
  for (const layer of layers) layer.class_name = 'GroupedConv2D';
  return { modelTopology: copy, mapped: layers.map((layer) => String((layer.config as Record<string, unknown>).name)) };
}
