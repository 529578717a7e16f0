/**
 * No input gradient for convolutions that read the data.
 *
 * tfjs-layers runs Conv2D through `tf.fused.conv2d`, whose gradient is a custom gradient: it
 * computes the input gradient and the filter gradient together, eagerly, even where the input is
 * the batch of images and nothing upstream can learn. That input gradient costs as many
 * multiply-adds as the layer's forward pass: 1.8 ms of the reference net's ~55 ms step (batch
 * 32), and more on a 224x224 model with a wide stride-1 first layer (VGG-style, 3 -> 64).
 *
 * `skipDataInputGradients` gives such layers (the model's own Conv2D layers whose every input is
 * computed from the data by layers without trainable weights: the input itself, zero padding,
 * rescaling, normalization) a training-time call through the plain `tf.conv2d`, whose registered
 * gradient is lazy: tfjs computes only the gradients on a path to the variables, so the input
 * gradient is never run. Outside gradient recording (inference, export) the layer's own call runs.
 * The result is the same convolution; a bias is then added by a separate op rather than fused
 * into the kernel, which can change the last bit of the sum.
 */
import * as tf from '@tensorflow/tfjs';

/** The fields of tfjs-layers' Conv2D that its call reads (not exported as a type). */
interface ConvLayerFields {
  rank: number;
  dataFormat: string;
  padding: string;
  strides: number[];
  dilationRate: number[];
  kernel: { read(): tf.Tensor };
  bias?: { read(): tf.Tensor } | null;
  activation: { apply(x: tf.Tensor): tf.Tensor };
  inboundNodes: Array<{ inboundLayers: tf.layers.Layer[] }>;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

const patched = new WeakSet<tf.layers.Layer>();
/** Models already walked, with the layers patched: the trainers call this on every step. */
const walked = new WeakMap<tf.LayersModel, string[]>();

/** Patches the model's data-reading Conv2D layers (idempotent); returns their names. */
export function skipDataInputGradients(model: tf.LayersModel): string[] {
  const known = walked.get(model);
  if (known) return [...known];
  const dataOnly = new Set<tf.layers.Layer>();
  const names: string[] = [];
  // model.layers is in topological order, so every inbound layer is classified before its users.
  for (const layer of model.layers) {
    const nodes = (layer as unknown as ConvLayerFields).inboundNodes;
    const readsDataOnly = nodes.length > 0 && nodes.every((node) => node.inboundLayers.every((parent) => parent.getClassName() === 'InputLayer' || dataOnly.has(parent)));
    if (layer.getClassName() === 'InputLayer') {
      dataOnly.add(layer);
    } else if (readsDataOnly && isPlainConv2D(layer)) {
      if (!patched.has(layer)) patchCall(layer as unknown as ConvLayerFields);
      patched.add(layer);
      names.push(layer.name);
    } else if (readsDataOnly && layer.trainableWeights.length === 0 && !(layer instanceof tf.LayersModel)) {
      dataOnly.add(layer);
    }
  }
  walked.set(model, names);
  return [...names];
}

/** A tfjs-layers Conv2D (not a subclass: depthwise and separable convs have other calls) in NHWC. */
function isPlainConv2D(layer: tf.layers.Layer): boolean {
  const conv = layer as unknown as ConvLayerFields;
  return layer.getClassName() === 'Conv2D' && conv.rank === 2 && conv.dataFormat === 'channelsLast' && (conv.padding === 'same' || conv.padding === 'valid');
}

function patchCall(conv: ConvLayerFields): void {
  const fused = conv.call.bind(conv);
  conv.call = (inputs, kwargs) => {
    if (tf.engine().state.gradientDepth === 0) return fused(inputs, kwargs);
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const [strideY, strideX] = conv.strides;
      const [dilationY, dilationX] = conv.dilationRate;
      let y: tf.Tensor = tf.conv2d(x, conv.kernel.read() as tf.Tensor4D, [strideY, strideX], conv.padding as 'same' | 'valid', 'NHWC', [dilationY, dilationX]);
      if (conv.bias) y = tf.add(y, conv.bias.read());
      return conv.activation.apply(y);
    });
  };
}
