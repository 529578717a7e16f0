/** Layers whose output channel c depends on input channel c only: normalization, activations, pooling, resizing. */
import type { GraphNode } from '../modelGraph';
import { activationOf, isChannelAxis, isChannelsLast, lastOf } from './shapes';
import type { LayerRule, LayerWeights } from './types';
import { sliceAxis } from './weights';

/**
 * Activations with f(0) == 0 that are applied element-wise, hence f(x * m) == f(x) * m for m in {0, 1}.
 * Not here: sigmoid and hard_sigmoid (f(0) = 0.5), softplus (log 2), exponential (1): a dropped
 * channel comes out non-zero, so a mask must follow them again. Softmax mixes channels.
 */
const ZERO_PRESERVING_ACTIVATIONS = new Set([
  'linear', 'relu', 'relu6', 'elu', 'selu', 'tanh', 'swish', 'silu', 'gelu', 'gelu_new', 'mish', 'softsign', 'leakyrelu', 'hard_swish', 'hardswish',
]);
/** Whether a named activation maps 0 to 0 element-wise (so a 0/1 mask commutes with it). */
export const activationKeepsZero = (name: string) => ZERO_PRESERVING_ACTIVATIONS.has(name.toLowerCase());
const CHANNEL_MIXING_ACTIVATIONS = new Set(['softmax', 'log_softmax', 'logsoftmax']);

/** A per-channel layer; `zero` says whether a zero channel stays zero and a mask commutes with it. */
function followRule(className: string, zero: (node: GraphNode) => boolean, extra: Partial<LayerRule> = {}): LayerRule {
  return {
    className,
    channels: (node) => (isChannelsLast(node) ? { kind: 'follow' } : { kind: 'opaque', inputsReason: `feeds channels_first layer '${node.layerName}'`, outputReason: `made by channels_first layer '${node.layerName}'` }),
    keepsZero: zero,
    commutesWithMask: zero,
    ...extra,
  };
}
const always = () => true;

function batchNormAffine(node: GraphNode, w: LayerWeights): { scale: Float32Array; shift: Float32Array } {
  const mean = w.moving_mean.values;
  const variance = w.moving_variance.values;
  const eps = node.config.epsilon ?? 1e-3;
  const scale = new Float32Array(mean.length);
  const shift = new Float32Array(mean.length);
  for (let c = 0; c < mean.length; c++) {
    const gamma = w.gamma ? w.gamma.values[c] : 1;
    const beta = w.beta ? w.beta.values[c] : 0;
    // Float64 for the fold itself: the deployed model should differ from the original by float32 rounding only.
    const s = gamma / Math.sqrt(variance[c] + eps);
    scale[c] = s;
    shift[c] = beta - mean[c] * s;
  }
  return { scale, shift };
}

export const batchNormalization: LayerRule = {
  className: 'BatchNormalization',
  channels: (node) =>
    isChannelAxis(node.config.axis, node.outputShape.length + 1)
      ? { kind: 'follow' }
      : { kind: 'opaque', inputsReason: `feeds BatchNormalization '${node.layerName}' over a non-channel axis`, outputReason: `made by BatchNormalization '${node.layerName}' over a non-channel axis` },
  // Its shift turns a zero channel into beta - mean * gamma / sigma.
  keepsZero: () => false,
  partOfUnit: always,
  cutOutputs: (_node, w, keep) => { for (const key of Object.keys(w)) w[key] = sliceAxis(w[key], 0, keep); },
  deploy: { kind: 'affine', affine: batchNormAffine },
};

export const activation: LayerRule = {
  className: 'Activation',
  channels: (node) =>
    CHANNEL_MIXING_ACTIVATIONS.has(activationOf(node))
      ? { kind: 'opaque', inputsReason: `feeds ${activationOf(node)} activation '${node.layerName}', which mixes channels`, outputReason: `made by ${activationOf(node)} activation '${node.layerName}'` }
      : { kind: 'follow' },
  keepsZero: (node) => ZERO_PRESERVING_ACTIVATIONS.has(activationOf(node)),
  commutesWithMask: (node) => ZERO_PRESERVING_ACTIVATIONS.has(activationOf(node)),
  partOfUnit: always,
  deploy: {
    kind: 'activation',
    // The layer applies the very activation function a producer's `activation` config would;
    // relu6 is better off as a ReLU layer (see reLU below), so it is not offered.
    activationName: (node) => (typeof node.config.activation === 'string' && !isRelu6(node.config.activation) ? node.config.activation : undefined),
    fasterLayer: (node) => (isRelu6(node.config.activation) ? { className: 'ReLU', config: relu6LayerConfig(node.layerName, node.config.trainable ?? true) } : undefined),
  },
};

const isRelu6 = (name: unknown) => typeof name === 'string' && name.toLowerCase() === 'relu6';

/** A ReLU(max_value 6) layer's config: the same function as the 'relu6' activation, as relu + clipByValue. */
export function relu6LayerConfig(name: string, trainable: boolean): Record<string, any> {
  return { name, trainable, max_value: 6 };
}

/**
 * tfjs's ReLU takes max_value only; Keras's negative_slope and threshold do not survive conversion.
 * Without max_value it is the 'relu' a conv fuses into its kernel. With max_value 6 it is not
 * offered as 'relu6': tfjs-layers computes that activation as minimum(6, relu(x)), and the wasm
 * backend's broadcasting Minimum took 12-31x the time of the layer's relu + clipByValue (fastest
 * of 22 runs at 112x112 with 40-96 channels, bench/wasm-ops.ts), so the fold would make the model slower.
 */
export const reLU = followRule('ReLU', always, {
  partOfUnit: always,
  deploy: { kind: 'activation', activationName: (node) => (node.config.max_value === undefined || node.config.max_value === null ? 'relu' : undefined) },
});
export const leakyReLU = followRule('LeakyReLU', always, { partOfUnit: always });
export const eLU = followRule('ELU', always, { partOfUnit: always });
/** f(x) = x for x > theta, else 0: f(0) = 0 for theta >= 0. */
export const thresholdedReLU = followRule('ThresholdedReLU', (node) => (node.config.theta ?? 1) >= 0, { partOfUnit: always });
/** PReLU's alpha has one slope per channel (unless shared over the channel axis): cut with its channel. */
export const pReLU = followRule('PReLU', always, {
  partOfUnit: always,
  cutOutputs: (_node, w, keep) => {
    if (w.alpha && lastOf(w.alpha.shape) > 1) w.alpha = sliceAxis(w.alpha, w.alpha.shape.length - 1, keep);
  },
});

export const softmax: LayerRule = {
  className: 'Softmax',
  channels: (node) => ({ kind: 'opaque', inputsReason: `feeds Softmax '${node.layerName}', which mixes channels`, outputReason: `made by Softmax '${node.layerName}'` }),
};

/** Rescaling computes x * scale + offset: an offset turns a zero channel into a constant one. */
export const rescaling = followRule('Rescaling', (node) => (node.config.offset ?? 0) === 0);

/** Spatial layers that act on each channel alone, map zero to zero and commute with a 0/1 mask. */
const SPATIAL_CLASSES = [
  'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D',
  'MaxPooling1D', 'AveragePooling1D', 'GlobalAveragePooling1D', 'GlobalMaxPooling1D',
  'ZeroPadding2D', 'UpSampling2D', 'Cropping2D', 'CenterCrop', 'Resizing',
];
/** Identity at inference; dropout multiplies by 0 or a constant, which commutes with a mask. */
const DROPOUT_CLASSES = ['Dropout', 'SpatialDropout1D', 'GaussianDropout'];
/** Add noise during training: a dropped channel is not zero while training. */
const NOISE_CLASSES = ['GaussianNoise', 'AlphaDropout'];

/** ZeroPadding2D's config as [[top, bottom], [left, right]]. */
function paddingOf(node: GraphNode): [[number, number], [number, number]] {
  const p = node.config.padding ?? 1;
  if (typeof p === 'number') return [[p, p], [p, p]];
  if (Array.isArray(p) && typeof p[0] === 'number') return [[p[0], p[0]], [p[1], p[1]]];
  return [[p[0][0], p[0][1]], [p[1][0], p[1][1]]];
}

/** Explicit zero padding moves a branch's window origin: a multi-branch block may start with it. */
export const zeroPadding2D = followRule('ZeroPadding2D', always, { deploy: { kind: 'padding', padding: paddingOf } });

/**
 * Keras' Normalization (PaS's KerasNormalization): (x - mean) / std per channel. Its shift turns a
 * zero channel into -mean / std, so a mask must follow it; a cut takes its statistics along,
 * whether they are weights or config values.
 */
export const normalization = followRule('Normalization', () => false, {
  cutOutputs: (node, w, keep) => {
    for (const key of ['mean', 'variance']) {
      if (w[key]) w[key] = sliceAxis(w[key], 0, keep);
      const given = node.config[key];
      if (Array.isArray(given)) node.config[key] = keep.map((c) => given[c]);
    }
  },
});

export const channelwiseRules: LayerRule[] = [
  normalization,
  batchNormalization, activation, reLU, leakyReLU, eLU, thresholdedReLU, pReLU, softmax, rescaling, zeroPadding2D,
  ...SPATIAL_CLASSES.filter((name) => name !== 'ZeroPadding2D').map((name) => followRule(name, always)),
  ...DROPOUT_CLASSES.map((name) => followRule(name, always, { deploy: { kind: 'identity' } })),
  ...NOISE_CLASSES.map((name) => followRule(name, () => false)),
  // PaS's own mask layer: x * m per channel.
  followRule('DepthwiseBinaryConv', always, { cutOutputs: (_node, w, keep) => { w.latent = sliceAxis(w.latent, 0, keep); } }),
];
