/** Layers that create a new channel space: convolutions and dense layers, and the depthwise conv that follows its input. */
import type { GraphNode } from '../modelGraph';
import { activationKeepsZero } from './channelwise';
import { activationOf, inChannels, isChannelsLast, outChannels, pair, positionsOf } from './shapes';
import type { DeployRole, LayerRule, LayerWeights } from './types';
import { expandByMultiplier, scaleAxis, sliceAxis } from './weights';

const CHANNELS_FIRST = { kind: 'opaque', inputsReason: 'feeds a channels_first layer', outputReason: 'made by a channels_first layer' } as const;

/** Scales output channels along `axis` of `kernelName` and folds `shift` into the bias (created when missing). */
function scaleOutputsAlong(kernelName: string, axis: number) {
  return (node: GraphNode, weights: LayerWeights, scale: ArrayLike<number>, shift?: ArrayLike<number>): void => {
    scaleAxis(weights[kernelName], axis, scale);
    if (!shift && !weights.bias) return;
    const outC = scale.length;
    const bias = weights.bias ? weights.bias.values : new Float32Array(outC);
    for (let o = 0; o < outC; o++) bias[o] = bias[o] * scale[o] + (shift ? shift[o] : 0);
    if (!weights.bias) {
      weights.bias = { shape: [outC], values: bias };
      node.config.use_bias = true;
      node.config.bias_initializer ??= { class_name: 'Zeros', config: {} };
    }
  };
}

function cutBias(weights: LayerWeights, keep: number[]): void {
  if (weights.bias) weights.bias = sliceAxis(weights.bias, 0, keep);
}

/** A linear producer absorbs a following affine map only if nothing non-linear sits between them. */
function linearDeploy(kernelName: string, outputAxis: number, extra: { branchOfBlock?: (node: GraphNode) => boolean; windowed?: boolean } = {}): DeployRole {
  return {
    kind: 'linear',
    canAbsorb: (node) => activationOf(node) === 'linear',
    canAbsorbMask: (node) => activationKeepsZero(activationOf(node)),
    scaleOutputs: scaleOutputsAlong(kernelName, outputAxis),
    branchOfBlock: extra.branchOfBlock,
    takesActivation: (node) => activationOf(node) === 'linear',
    takesSamePadding: extra.windowed ? (node) => node.config.padding === 'valid' && isUndilated(node) && isChannelsLast(node) : undefined,
  };
}

const isUndilated = (node: GraphNode) => pair(node.config.dilation_rate, 1).every((d) => d === 1);

/** A conv that can be summed into a multi-branch block's fused conv: linear, undilated, channels last. */
function isPlainConv(node: GraphNode): boolean {
  return isUndilated(node) && activationOf(node) === 'linear' && isChannelsLast(node);
}

export const conv2D: LayerRule = {
  className: 'Conv2D',
  channels: (node) => (isChannelsLast(node) ? { kind: 'create' } : CHANNELS_FIRST),
  macs: (node) => {
    const [kh, kw] = pair(node.config.kernel_size, 1);
    return [{ macs: positionsOf(node.outputShape) * kh * kw * inChannels(node) * outChannels(node), perInput: true, perOutput: true }];
  },
  cutInputs: (_node, w, keep) => { w.kernel = sliceAxis(w.kernel, 2, keep); },
  cutOutputs: (_node, w, keep) => { w.kernel = sliceAxis(w.kernel, 3, keep); cutBias(w, keep); },
  setWidth: (node, width) => { node.config.filters = width; },
  outputKernel: { weight: 'kernel', axis: 3 },
  deploy: linearDeploy('kernel', 3, { branchOfBlock: isPlainConv, windowed: true }),
};

/** tfjs stores a transposed conv's kernel as [kh, kw, out, in]. */
export const conv2DTranspose: LayerRule = {
  className: 'Conv2DTranspose',
  channels: (node) => (isChannelsLast(node) ? { kind: 'create' } : CHANNELS_FIRST),
  // Every input pixel scatters a kh x kw window into every output channel.
  macs: (node) => {
    const [kh, kw] = pair(node.config.kernel_size, 1);
    return [{ macs: positionsOf(node.inputShapes[0]) * kh * kw * inChannels(node) * outChannels(node), perInput: true, perOutput: true }];
  },
  cutInputs: (_node, w, keep) => { w.kernel = sliceAxis(w.kernel, 3, keep); },
  cutOutputs: (_node, w, keep) => { w.kernel = sliceAxis(w.kernel, 2, keep); cutBias(w, keep); },
  setWidth: (node, width) => { node.config.filters = width; },
  outputKernel: { weight: 'kernel', axis: 2 },
  deploy: linearDeploy('kernel', 2),
};

const depthMultiplier = (node: GraphNode): number => node.config.depth_multiplier ?? 1;

/** A depthwise conv maps channel c to channel c: it follows its input's space (multiplier 1 only). */
export const depthwiseConv2D: LayerRule = {
  className: 'DepthwiseConv2D',
  channels: (node) => {
    if (!isChannelsLast(node)) return CHANNELS_FIRST;
    if (depthMultiplier(node) !== 1) {
      return { kind: 'opaque', inputsReason: `feeds depthwise conv '${node.layerName}' with depth_multiplier > 1`, outputReason: `made by depthwise conv '${node.layerName}' with depth_multiplier > 1` };
    }
    return { kind: 'follow' };
  },
  // Its bias turns a dropped (zero) channel into a constant one.
  keepsZero: (node) => node.config.use_bias === false && activationOf(node) === 'linear',
  macs: (node) => {
    const [kh, kw] = pair(node.config.kernel_size, 1);
    return [{ macs: positionsOf(node.outputShape) * kh * kw * outChannels(node), perInput: true, perOutput: false }];
  },
  cutOutputs: (_node, w, keep) => { w.depthwise_kernel = sliceAxis(w.depthwise_kernel, 2, keep); cutBias(w, keep); },
  deploy: linearDeploy('depthwise_kernel', 2, { windowed: true }),
};

/** Depthwise part (follows the input, times its multiplier) then a pointwise conv into a new space. */
export const separableConv2D: LayerRule = {
  className: 'SeparableConv2D',
  channels: (node) => (isChannelsLast(node) ? { kind: 'create' } : CHANNELS_FIRST),
  macs: (node) => {
    const [kh, kw] = pair(node.config.kernel_size, 1);
    const positions = positionsOf(node.outputShape);
    const depthwise = inChannels(node) * depthMultiplier(node);
    return [
      { macs: positions * kh * kw * depthwise, perInput: true, perOutput: false },
      { macs: positions * depthwise * outChannels(node), perInput: true, perOutput: true },
    ];
  },
  cutInputs: (node, w, keep) => {
    w.depthwise_kernel = sliceAxis(w.depthwise_kernel, 2, keep);
    w.pointwise_kernel = sliceAxis(w.pointwise_kernel, 2, expandByMultiplier(keep, depthMultiplier(node)));
  },
  cutOutputs: (_node, w, keep) => { w.pointwise_kernel = sliceAxis(w.pointwise_kernel, 3, keep); cutBias(w, keep); },
  setWidth: (node, width) => { node.config.filters = width; },
  outputKernel: { weight: 'pointwise_kernel', axis: 3 },
  deploy: linearDeploy('pointwise_kernel', 3),
};

/**
 * A grouped convolution (engine class GroupedConv2D: ResNeXt, RegNet). Output channel o reads
 * only its group's input channels, so dropping a channel on either side would have to keep the
 * groups equal: PaS holds both spaces at full width (the layer still counts its MACs, and BN
 * after it folds into it on deployment).
 */
export const groupedConv2D: LayerRule = {
  className: 'GroupedConv2D',
  channels: (node) => ({
    kind: 'opaque',
    inputsReason: `feeds grouped conv '${node.layerName}' (${node.config.groups} groups)`,
    outputReason: `made by grouped conv '${node.layerName}' (${node.config.groups} groups)`,
  }),
  macs: (node) => {
    const [kh, kw] = pair(node.config.kernel_size, 1);
    return [{ macs: (positionsOf(node.outputShape) * kh * kw * inChannels(node) * outChannels(node)) / (node.config.groups ?? 1), perInput: true, perOutput: true }];
  },
  outputKernel: { weight: 'kernel', axis: 3 },
  deploy: linearDeploy('kernel', 3, { windowed: true }),
};

/** A dense layer on a vector, or on every position of a feature map (a 1x1 conv). */
export const dense: LayerRule = {
  className: 'Dense',
  channels: () => ({ kind: 'create' }),
  macs: (node) => [{ macs: positionsOf(node.outputShape) * inChannels(node) * outChannels(node), perInput: true, perOutput: true }],
  cutInputs: (_node, w, keep) => { w.kernel = sliceAxis(w.kernel, 0, keep); },
  cutOutputs: (_node, w, keep) => { w.kernel = sliceAxis(w.kernel, 1, keep); cutBias(w, keep); },
  setWidth: (node, width) => { node.config.units = width; },
  outputKernel: { weight: 'kernel', axis: 1 },
  deploy: linearDeploy('kernel', 1),
};

export const convolutionRules: LayerRule[] = [conv2D, conv2DTranspose, depthwiseConv2D, separableConv2D, groupedConv2D, dense];
