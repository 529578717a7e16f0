import type { GraphNode, WeightArray } from '../modelGraph';

/** A layer's weights by short name (`kernel`, `bias`, `gamma`, ...), edited in place by cuts. */
export type LayerWeights = Record<string, WeightArray>;

/**
 * How a layer moves channels from its inputs to its output.
 * - `input`: the model's input (a channel space nothing may prune).
 * - `create`: a new channel space (convs, dense): its output channels are free to prune.
 * - `follow`: output channel c depends on input channel c only (BN, activations, pooling, depthwise conv).
 * - `flatten`: the input's channels repeated once per spatial position (Flatten).
 * - `join`: element-wise over several inputs (Add, Multiply with broadcasting): their channels are coupled.
 * - `concatenate`: the inputs' channels side by side (index mapping at offsets); creates no space.
 * - `opaque`: mixes channels in a way PaS does not handle: every space it touches is held at full width.
 */
export type ChannelMove =
  | { kind: 'input' }
  | { kind: 'create' }
  | { kind: 'follow' }
  | { kind: 'flatten' }
  | { kind: 'join' }
  | { kind: 'concatenate' }
  | { kind: 'opaque'; inputsReason: string; outputReason: string };

/** One multiply-accumulate part of a layer: macs = coefficient * c_in^(perInput) * c_out^(perOutput) at full width. */
export interface MacsPart {
  macs: number;
  /** Scales with the kept input channels. */
  perInput: boolean;
  /** Scales with the kept output channels. */
  perOutput: boolean;
}

/** How a layer takes part in deployment (reparameterization). */
export type DeployRole =
  /** A per-channel affine map (BN): folds into the linear producer before it. */
  | { kind: 'affine'; affine(node: GraphNode, weights: LayerWeights): { scale: Float32Array; shift: Float32Array } }
  /** A linear producer that absorbs a per-channel scale and shift of its outputs. */
  | {
      kind: 'linear';
      /** An affine map (BN) folds in: the layer has no activation of its own. */
      canAbsorb(node: GraphNode): boolean;
      /** A 0/1 mask folds in: its own activation, if any, commutes with the mask. */
      canAbsorbMask(node: GraphNode): boolean;
      scaleOutputs(node: GraphNode, weights: LayerWeights, scale: ArrayLike<number>, shift?: ArrayLike<number>): void; branchOfBlock?(node: GraphNode): boolean;
      /** The layer's own `activation` can take over a following activation layer's (it is linear now). */
      takesActivation?(node: GraphNode): boolean;
      /** A 'valid' window op whose `padding` may become 'same' (undilated, channels last). */
      takesSamePadding?(node: GraphNode): boolean }
  /**
   * An element-wise activation layer that computes exactly a Keras activation by name (ReLU with
   * max_value 6 is 'relu6'): a linear producer before it can apply it as its own `activation`, one
   * layer (and, where tfjs fuses it, one kernel) fewer. Undefined: no named activation matches.
   */
  | {
      kind: 'activation';
      activationName(node: GraphNode): string | undefined;
      /** A stock layer computing the same function faster on tfjs (Keras class name and config), if any. */
      fasterLayer?(node: GraphNode): { className: string; config: Record<string, any> } | undefined;
    }
  /** The identity at inference (dropout): the deployed model skips it. */
  | { kind: 'identity' }
  /** Explicit zero padding: shifts a branch's window origin. */
  | { kind: 'padding'; padding(node: GraphNode): [[number, number], [number, number]] }
  /** A sum of branches: a multi-branch block when every input is a linear branch of one source. */
  | { kind: 'sum' };

/**
 * Everything PaS knows about one Keras layer class. Algorithms ask these questions and never test
 * class names; adding a class is one rule (and its tests).
 */
export interface LayerRule {
  className: string;
  channels(node: GraphNode): ChannelMove;
  /**
   * For `follow` layers: is an all-zero input channel still all zero at the output, for every input?
   * When not (BN's shift, sigmoid(0) = 0.5, a depthwise conv's bias), a mask must follow the layer
   * again, or pruning the channel would change what consumers read.
   */
  keepsZero?(node: GraphNode): boolean;
  /**
   * f(x) * m == f(x * m) for m in {0, 1}, element-wise per channel: a mask may move across the layer
   * (a producer's unit walks over it, and a mask folds back through it into the producer).
   */
  commutesWithMask?(node: GraphNode): boolean;
  /** Per-channel element-wise layers that belong to the unit of the producer before them (BN, activations). */
  partOfUnit?(node: GraphNode): boolean;
  macs?(node: GraphNode): MacsPart[];
  /** Drops input channels: `keep` indexes the input's channels. */
  cutInputs?(node: GraphNode, weights: LayerWeights, keep: number[]): void;
  /** Drops output channels (for `follow` layers, the channels it carries). */
  cutOutputs?(node: GraphNode, weights: LayerWeights, keep: number[]): void;
  /** The weight and axis holding a producer's output channels (magnitude baselines rank channels by it). */
  outputKernel?: { weight: string; axis: number };
  /** Writes the new output width into the config (filters, units, a Reshape's target). */
  setWidth?(node: GraphNode, width: number): void;
  deploy?: DeployRole;
}
