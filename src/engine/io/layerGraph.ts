/**
 * Structural checks of a Layers model topology, done on the JSON before tfjs sees it: tfjs
 * deserializes a functional graph by walking inbound nodes, and on a dangling reference or a
 * cycle it throws an obscure error or never finishes. Here the model is refused with a message
 * that names the layer.
 */
import { PasInputError } from '../errors';
import { isPlainObject } from './weightManifest';

/** Topology classes that hold layers: a Sequential stack or a functional graph. */
export const MODEL_CLASS_NAMES: ReadonlySet<string> = new Set(['Sequential', 'Model', 'Functional']);

/** Models nested deeper than this are refused (no real network needs it; it bounds recursion). */
const MAX_MODEL_NESTING = 16;

/** One layer of a topology, with where it sits for messages. */
export interface TopologyLayer {
  /** The layer's name, or `#<index>` for an unnamed Sequential layer. */
  name: string;
  className: string;
  /** Names of the enclosing nested models, outermost first; empty for top-level layers. */
  enclosingModels: string[];
  config: Record<string, unknown>;
}

/**
 * Every `{class_name, config}` object of class `className` anywhere in a topology (nested models
 * included), in document order: the loader's rewrites (BN defaults, grouped convs, Normalization)
 * find their layers with it.
 */
export function layerObjectsOfClass(node: unknown, className: string, found: Array<Record<string, unknown> & { config: Record<string, unknown> }> = []): Array<Record<string, unknown> & { config: Record<string, unknown> }> {
  if (Array.isArray(node)) {
    for (const item of node) layerObjectsOfClass(item, className, found);
  } else if (isPlainObject(node)) {
    if (node.class_name === className && isPlainObject(node.config)) found.push(node as Record<string, unknown> & { config: Record<string, unknown> });
    for (const value of Object.values(node)) layerObjectsOfClass(value, className, found);
  }
  return found;
}

/** `{class_name, config}` of the model, unwrapping the `model_config` the Keras converter writes. */
export function modelConfigOf(modelTopology: Record<string, unknown>): Record<string, unknown> {
  return isPlainObject(modelTopology.model_config) ? modelTopology.model_config : modelTopology;
}

/** The list of layer JSON objects of a model config, for both Sequential config forms. */
function rawLayersOf(model: Record<string, unknown>): unknown[] | undefined {
  const config = model.config;
  // Old Keras and tfjs wrote a Sequential's config as the bare list of its layers.
  if (Array.isArray(config)) return config;
  if (isPlainObject(config) && Array.isArray(config.layers)) return config.layers;
  return undefined;
}

function layerNameOf(rawLayer: Record<string, unknown>): string | undefined {
  if (typeof rawLayer.name === 'string') return rawLayer.name;
  const config = rawLayer.config;
  return isPlainObject(config) && typeof config.name === 'string' ? config.name : undefined;
}

function quoteList(names: string[], max = 5): string {
  const shown = names.slice(0, max).map((name) => `'${name}'`).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

interface NodeReference {
  layer: string;
  nodeIndex: number;
}

/** Parses a Keras 2 / tfjs tensor reference `[layerName, nodeIndex, tensorIndex, kwargs?]`. */
function parseReference(raw: unknown): NodeReference | undefined {
  if (!Array.isArray(raw) || raw.length < 3 || typeof raw[0] !== 'string') return undefined;
  const [layer, nodeIndex, tensorIndex] = raw;
  if (!Number.isInteger(nodeIndex) || nodeIndex < 0 || !Number.isInteger(tensorIndex) || tensorIndex < 0) {
    return undefined;
  }
  return { layer, nodeIndex };
}

function isKeras3Node(rawNode: unknown): boolean {
  // Keras 3 writes each inbound node as {args: [{class_name: '__keras_tensor__', config: {keras_history}}], kwargs}.
  return isPlainObject(rawNode) && ('args' in rawNode || 'kwargs' in rawNode);
}

const KERAS3_ADVICE =
  'uses the Keras 3 format (inbound nodes with keras_history), which TF.js 4 cannot load; ' +
  'convert the model from a Keras 2 (tf.keras, TensorFlow <= 2.15) .h5 file with tensorflowjs_converter';

/**
 * Checks a functional graph: unique layer names, inbound nodes in the Keras 2 / tfjs list form,
 * every reference naming an existing layer and node, inputs and outputs that exist, no cycles.
 */
function checkFunctionalGraph(modelName: string, rawLayers: Record<string, unknown>[], config: Record<string, unknown>, file: string): void {
  const where = modelName ? ` (in model '${modelName}')` : '';
  const nodeCountByLayer = new Map<string, number>();
  // Layers other than InputLayer without inbound nodes produce no tensor: tfjs waits for one forever.
  const unappliedLayers = new Set<string>();
  for (const rawLayer of rawLayers) {
    // tfjs links a functional model's layers by this top-level name only (not config.name).
    const name = typeof rawLayer.name === 'string' ? rawLayer.name : undefined;
    if (name === undefined) throw new PasInputError(`a layer${where} has no name: functional layers need one`, file);
    if (nodeCountByLayer.has(name)) throw new PasInputError(`two layers are named '${name}'${where}`, file);
    const inboundNodes = rawLayer.inbound_nodes ?? [];
    if (!Array.isArray(inboundNodes)) {
      throw new PasInputError(`layer '${name}'${where} has inbound_nodes that are not a list`, file);
    }
    if (inboundNodes.some(isKeras3Node)) throw new PasInputError(`layer '${name}'${where} ${KERAS3_ADVICE}`, file);
    // An InputLayer has no inbound nodes but creates one node that others reference.
    nodeCountByLayer.set(name, Math.max(1, inboundNodes.length));
    if (inboundNodes.length === 0 && rawLayer.class_name !== 'InputLayer') unappliedLayers.add(name);
  }

  const checkReference = (raw: unknown, user: string): NodeReference => {
    const reference = parseReference(raw);
    if (!reference) {
      throw new PasInputError(`${user}${where} has an input reference ${JSON.stringify(raw)?.slice(0, 80)} that is not [layer, node, tensor]`, file);
    }
    const nodeCount = nodeCountByLayer.get(reference.layer);
    if (nodeCount === undefined) {
      throw new PasInputError(`${user}${where} takes input from layer '${reference.layer}', which does not exist in the model`, file);
    }
    if (unappliedLayers.has(reference.layer)) {
      throw new PasInputError(`${user}${where} takes input from layer '${reference.layer}', which has no inbound nodes (it is never applied to an input)`, file);
    }
    if (reference.nodeIndex >= nodeCount) {
      throw new PasInputError(
        `${user}${where} takes input from node ${reference.nodeIndex} of layer '${reference.layer}', which has only ${nodeCount}`,
        file,
      );
    }
    return reference;
  };

  // Kahn's algorithm over (layer, node) pairs: a shared layer applied twice is not a cycle,
  // only a node that (indirectly) feeds itself is.
  const nodeId = (layer: string, nodeIndex: number): string => `${layer}\u0000${nodeIndex}`;
  const dependents = new Map<string, string[]>();
  const pendingInputs = new Map<string, number>();
  for (const rawLayer of rawLayers) {
    const name = rawLayer.name as string;
    const inboundNodes = (rawLayer.inbound_nodes ?? []) as unknown[];
    if (inboundNodes.length === 0) pendingInputs.set(nodeId(name, 0), 0);
    inboundNodes.forEach((rawNode, nodeIndex) => {
      if (!Array.isArray(rawNode)) {
        throw new PasInputError(`layer '${name}'${where} has an inbound node that is not a list of references`, file);
      }
      if (rawNode.length === 0) {
        // tfjs would wait forever for the inputs of a node that lists none.
        throw new PasInputError(`layer '${name}'${where} has an inbound node with no inputs`, file);
      }
      const id = nodeId(name, nodeIndex);
      pendingInputs.set(id, rawNode.length);
      for (const raw of rawNode) {
        const reference = checkReference(raw, `layer '${name}'`);
        const source = nodeId(reference.layer, reference.nodeIndex);
        dependents.set(source, [...(dependents.get(source) ?? []), id]);
      }
    });
  }
  for (const key of ['input_layers', 'output_layers'] as const) {
    const references = config[key];
    if (!Array.isArray(references) || references.length === 0) {
      throw new PasInputError(`the model${where} has no ${key} list of [layer, node, tensor] references`, file);
    }
    for (const raw of references) checkReference(raw, `${key} of the model`);
  }

  const ready = [...pendingInputs].filter(([, count]) => count === 0).map(([id]) => id);
  let resolved = 0;
  while (ready.length > 0) {
    const id = ready.pop() as string;
    resolved++;
    for (const dependent of dependents.get(id) ?? []) {
      const left = (pendingInputs.get(dependent) as number) - 1;
      pendingInputs.set(dependent, left);
      if (left === 0) ready.push(dependent);
    }
  }
  if (resolved < pendingInputs.size) {
    const inCycle = [...new Set([...pendingInputs].filter(([, count]) => count > 0).map(([id]) => id.split('\u0000')[0]))];
    throw new PasInputError(`the layer graph${where} has a cycle through layers ${quoteList(inCycle)}`, file);
  }
}

/**
 * Validates a model config (`{class_name, config}`, already unwrapped from `model_config`) and
 * every nested model in it, and returns all layers depth-first. Throws {@link PasInputError}
 * naming `file` for: a class other than Sequential/Model/Functional, a missing layer list,
 * layers without `class_name`, Keras 3 inbound nodes, dangling references and cycles.
 */
export function checkModelTopology(model: Record<string, unknown>, file: string): TopologyLayer[] {
  const layers: TopologyLayer[] = [];
  const visit = (current: Record<string, unknown>, enclosingModels: string[]): void => {
    if (enclosingModels.length > MAX_MODEL_NESTING) {
      throw new PasInputError(`models are nested more than ${MAX_MODEL_NESTING} deep`, file);
    }
    const className = current.class_name;
    if (typeof className !== 'string' || !MODEL_CLASS_NAMES.has(className)) {
      throw new PasInputError(
        `the topology has class ${JSON.stringify(className)}; a Layers model is a Sequential, Model or Functional`,
        file,
      );
    }
    const rawLayers = rawLayersOf(current);
    const modelName = enclosingModels[enclosingModels.length - 1] ?? '';
    if (!rawLayers) throw new PasInputError(`the ${className} model${modelName ? ` '${modelName}'` : ''} has no list of layers`, file);
    rawLayers.forEach((rawLayer, index) => {
      if (!isPlainObject(rawLayer) || typeof rawLayer.class_name !== 'string' || !isPlainObject(rawLayer.config)) {
        throw new PasInputError(`layer #${index}${modelName ? ` of model '${modelName}'` : ''} is not a {class_name, config} object`, file);
      }
    });
    const typedLayers = rawLayers as Record<string, unknown>[];
    if (className !== 'Sequential') {
      checkFunctionalGraph(modelName, typedLayers, current.config as Record<string, unknown>, file);
    }
    typedLayers.forEach((rawLayer, index) => {
      const name = layerNameOf(rawLayer) ?? `#${index}`;
      const layer: TopologyLayer = {
        name,
        className: rawLayer.class_name as string,
        enclosingModels,
        config: rawLayer.config as Record<string, unknown>,
      };
      layers.push(layer);
      if (MODEL_CLASS_NAMES.has(layer.className)) visit(rawLayer, [...enclosingModels, name]);
    });
  };
  visit(model, []);
  return layers;
}
