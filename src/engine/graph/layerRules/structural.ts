/** Layers that route channels: the input, merges (element-wise joins and concatenation) and reshapes. */
import { isChannelAxis, lastOf } from './shapes';
import type { LayerRule } from './types';

export const inputLayer: LayerRule = { className: 'InputLayer', channels: () => ({ kind: 'input' }) };

/** Flatten lays the channels out once per position: feature p * C + c is channel c. */
export const flatten: LayerRule = { className: 'Flatten', channels: () => ({ kind: 'flatten' }), keepsZero: () => true, commutesWithMask: () => true };

/**
 * A Reshape that keeps the channel axis last and its size (e.g. [C] -> [1, 1, C] in
 * squeeze-excitation) moves whole channels; any other Reshape mixes them.
 */
export const reshape: LayerRule = {
  className: 'Reshape',
  channels: (node) =>
    lastOf(node.outputShape) === lastOf(node.inputShapes[0])
      ? { kind: 'follow' }
      : {
          kind: 'opaque',
          inputsReason: `joined by Reshape '${node.layerName}' to a shape whose last axis is not the channels (non-(1,1,C))`,
          outputReason: `made by Reshape '${node.layerName}' to a non-(1,1,C) shape`,
        },
  keepsZero: () => true,
  commutesWithMask: () => true,
  setWidth: (node, width) => {
    const target = node.config.target_shape as number[];
    node.config.target_shape = [...target.slice(0, -1), width];
  },
};

/** Element-wise merges: their inputs' channels are coupled (kept or dropped together); zero in, zero out. */
function joinRule(className: string, extra: Partial<LayerRule> = {}): LayerRule {
  return { className, channels: () => ({ kind: 'join' }), keepsZero: () => true, ...extra };
}

export const add = joinRule('Add', { deploy: { kind: 'sum' } });

export const concatenate: LayerRule = {
  className: 'Concatenate',
  channels: (node) =>
    isChannelAxis(node.config.axis, node.outputShape.length + 1)
      ? { kind: 'concatenate' }
      : { kind: 'opaque', inputsReason: `feeds Concatenate '${node.layerName}' along a non-channel axis`, outputReason: `made by Concatenate '${node.layerName}' along a non-channel axis` },
  keepsZero: () => true,
  commutesWithMask: () => true,
};

/**
 * PaS's ChannelShuffle and ChannelSlice (ShuffleNet, from ONNX): they move channels between
 * groups (a shuffle interleaves the groups, a slice takes part of a group), so every space they
 * touch keeps its full width; the convolutions between them still prune.
 */
function channelRearrangement(className: string, what: string): LayerRule {
  return {
    className,
    channels: (node) => ({ kind: 'opaque', inputsReason: `feeds ${what} '${node.layerName}'`, outputReason: `made by ${what} '${node.layerName}'` }),
  };
}

export const structuralRules: LayerRule[] = [
  inputLayer, flatten, reshape, add, concatenate,
  channelRearrangement('ChannelShuffle', 'channel shuffle'), channelRearrangement('ChannelSlice', 'channel slice'),
  // Multiply is squeeze-excitation's gate when one side is [1, 1, C]: broadcasting keeps channels coupled.
  joinRule('Multiply'), joinRule('Average'), joinRule('Maximum'), joinRule('Minimum'), joinRule('Subtract'),
];
