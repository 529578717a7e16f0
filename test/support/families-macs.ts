/**
 * An independent multiply-accumulate count, written for the tests from the layer configs and the
 * shapes tfjs infers (not from the engine's counter): the reference the engine's per-layer MACs
 * are compared with. Convention of the PaS and RepVGG papers: convolutions and dense layers only,
 * one MAC per weight tap per output position; BN, activations, pooling, adds and products are not
 * counted. Not a test file.
 */
import * as tf from '@tensorflow/tfjs';

const last = (shape: number[]) => shape[shape.length - 1];

function kernelSize(config: any): [number, number] {
  // tfjs getConfig() is camelCase.
  const k = config.kernelSize;
  return Array.isArray(k) ? [k[0], k[1] ?? k[0]] : [k, k];
}

/** The live layer's multiplier: tfjs 4.22's SeparableConv2D.getConfig leaves depth_multiplier out. */
function depthMultiplier(layer: tf.layers.Layer): number {
  return (layer as unknown as { depthMultiplier?: number }).depthMultiplier ?? 1;
}

/** Layer shapes without the batch axis. */
function shapesOf(layer: tf.layers.Layer): { input: number[]; output: number[] } {
  const node = layer.inboundNodes[0];
  const first = (s: any): number[] => (Array.isArray(s[0]) ? s[0] : s);
  return { input: first(node.inputShapes).slice(1), output: first(node.outputShapes).slice(1) };
}

/**
 * MACs of one layer for one image, or undefined for a class this counter does not count (the
 * caller decides whether that class is expected to have MACs):
 * - Conv2D: H_out W_out kh kw C_in C_out (dilation does not change it)
 * - DepthwiseConv2D: H_out W_out kh kw C_in depth_multiplier
 * - SeparableConv2D: its depthwise part plus its pointwise part, H_out W_out (kh kw C_in m + C_in m C_out)
 * - Conv2DTranspose: every input position times every tap, H_in W_in kh kw C_in C_out
 * - Dense on a [features] input: C_in C_out
 */
export function referenceLayerMacs(layer: tf.layers.Layer): number | undefined {
  const config = layer.getConfig() as any;
  const className = layer.getClassName();
  const zeroForNonConv = ['InputLayer', 'BatchNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'PReLU', 'ELU', 'Softmax', 'Add', 'Multiply', 'Concatenate', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'ZeroPadding2D', 'Cropping2D', 'UpSampling2D', 'Reshape', 'Flatten', 'Dropout'];
  if (zeroForNonConv.includes(className)) return 0;
  const { input, output } = shapesOf(layer);
  const [kh, kw] = className === 'Dense' ? [1, 1] : kernelSize(config);
  const outPositions = output.length === 3 ? output[0] * output[1] : 1;
  switch (className) {
    case 'Conv2D':
      return outPositions * kh * kw * last(input) * last(output);
    case 'DepthwiseConv2D':
      return outPositions * kh * kw * last(input) * depthMultiplier(layer);
    case 'SeparableConv2D': {
      const m = depthMultiplier(layer);
      return outPositions * (kh * kw * last(input) * m + last(input) * m * last(output));
    }
    case 'Conv2DTranspose':
      return input[0] * input[1] * kh * kw * last(input) * last(output);
    case 'Dense':
      if (input.length !== 1) throw new Error(`reference count: dense '${layer.name}' on a feature map is not handled`);
      return last(input) * last(output);
    default:
      return undefined;
  }
}

/** Reference MACs of every layer of a model whose layers are each called once, by layer name. */
export function referenceMacsByLayer(model: tf.LayersModel): { byLayer: Map<string, number>; uncounted: string[] } {
  const byLayer = new Map<string, number>();
  const uncounted: string[] = [];
  for (const layer of model.layers) {
    if (layer.inboundNodes.length > 1) throw new Error(`reference count: layer '${layer.name}' is called more than once`);
    const macs = referenceLayerMacs(layer);
    if (macs === undefined) uncounted.push(layer.name);
    else byLayer.set(layer.name, macs);
  }
  return { byLayer, uncounted };
}

/** Sum of the reference counts. */
export function referenceTotalMacs(model: tf.LayersModel): number {
  return [...referenceMacsByLayer(model).byLayer.values()].reduce((a, b) => a + b, 0);
}
