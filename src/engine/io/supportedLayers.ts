/**
 * The layer classes PaS can search, prune and reparameterize. Models are checked against this
 * list before tfjs deserializes them, so an LSTM gets "not supported by PaS" rather than a tfjs
 * error (or, worse, a model that loads and then fails halfway through a search).
 */
import { PasInputError } from '../errors';
import { MODEL_CLASS_NAMES, type TopologyLayer } from './layerGraph';

const BUILT_IN_LAYER_CLASSES = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'BatchNormalization',
  'ReLU',
  'Activation',
  'Add',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'ZeroPadding2D',
  'Flatten',
  'Dense',
  'Dropout',
];

const supportedLayerClasses = new Set<string>(BUILT_IN_LAYER_CLASSES);

/**
 * Adds a layer class the engine registers with tfjs itself (e.g. the DBC mask layer
 * `'DepthwiseBinaryConv'`), so that models containing it pass the support check. The class must
 * also be registered with `tf.serialization.registerClass` for tfjs to deserialize it.
 */
export function registerSupportedLayerClass(className: string): void {
  if (className.trim() === '') throw new Error('registerSupportedLayerClass: empty class name');
  supportedLayerClasses.add(className);
}

/** The supported layer classes, built-in ones first, then registered ones. */
export function supportedLayerClassNames(): string[] {
  return [...supportedLayerClasses];
}

/**
 * Throws a {@link PasInputError} naming `file` and the first unsupported layer (and how many
 * more there are) if any layer's class is not supported. Nested Sequential/Model/Functional
 * layers are containers and are allowed; their own layers are checked.
 */
export function assertLayersSupported(layers: TopologyLayer[], file: string): void {
  const unsupported = layers.filter(
    (layer) => !supportedLayerClasses.has(layer.className) && !MODEL_CLASS_NAMES.has(layer.className),
  );
  if (unsupported.length === 0) return;
  const [first] = unsupported;
  const location = first.enclosingModels.length > 0 ? ` (in model '${first.enclosingModels.join("' > '")}')` : '';
  const more = unsupported.length > 1 ? ` (and ${unsupported.length - 1} more unsupported layers)` : '';
  throw new PasInputError(
    `layer '${first.name}'${location} has class '${first.className}', which PaS does not support${more}; ` +
      `supported: ${supportedLayerClassNames().join(', ')}`,
    file,
  );
}
