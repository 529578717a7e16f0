import type { GraphNode } from '../modelGraph';

export const lastOf = (shape: number[]) => shape[shape.length - 1];
export const product = (values: number[]) => values.reduce((a, b) => a * b, 1);

/** A Keras int-or-pair config value as a pair. */
export const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined || v === null ? [fallback, fallback] : Array.isArray(v) ? [v[0], v[1] ?? v[0]] : [v, v];

/** Positions of a feature map (H * W), or 1 for a vector. */
export const positionsOf = (shape: number[]) => product(shape.slice(0, -1));

export const isChannelsLast = (node: GraphNode) => (node.config.data_format ?? 'channels_last') === 'channels_last';

export const inChannels = (node: GraphNode) => lastOf(node.inputShapes[0]);
export const outChannels = (node: GraphNode) => lastOf(node.outputShape);

export const activationOf = (node: GraphNode) => String(node.config.activation ?? 'linear').toLowerCase();

/** A Keras axis argument refers to the channel (last) axis of a rank-`rank` tensor (with batch). */
export function isChannelAxis(axis: unknown, outputRank: number): boolean {
  const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis ?? -1;
  return a === -1 || a === outputRank - 1;
}
