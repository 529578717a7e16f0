/**
 * The layer-rules registry: one entry per Keras layer class, saying how it moves channels, its
 * MACs, how to cut its inputs and outputs, and how it deploys. The analysis, counting, pruning
 * and reparameterization ask the registry; none of them tests class names. A class with no
 * rule is opaque: the model loads and inspects, and every channel space touching it keeps its
 * full width. See docs/layers.md.
 */
import type { GraphNode } from '../modelGraph';
import { channelwiseRules } from './channelwise';
import { convolutionRules } from './convolutions';
import { structuralRules } from './structural';
import type { LayerRule, MacsPart } from './types';

export type { ChannelMove, DeployRole, LayerRule, LayerWeights, MacsPart } from './types';
export { sliceAxis, scaleAxis } from './weights';

const rules = new Map<string, LayerRule>();

/** Adds (or replaces) the rule of a layer class. */
export function registerLayerRule(rule: LayerRule): void {
  rules.set(rule.className, rule);
}

for (const rule of [...structuralRules, ...convolutionRules, ...channelwiseRules]) registerLayerRule(rule);

/** Whether the registry knows the class (an unknown class still loads, as an opaque layer). */
export function hasLayerRule(className: string): boolean {
  return rules.has(className);
}

export function knownLayerClasses(): string[] {
  return [...rules.keys()];
}

function unknownRule(className: string): LayerRule {
  return {
    className,
    channels: (node) => ({
      kind: 'opaque',
      inputsReason: `feeds an unknown layer ${node.className} ('${node.layerName}')`,
      outputReason: `made by an unknown layer ${node.className} ('${node.layerName}')`,
    }),
  };
}

/** The rule of a node's class; an opaque rule for classes the registry does not know. */
export function ruleOf(node: GraphNode): LayerRule {
  return rules.get(node.className) ?? unknownRule(node.className);
}

/** MACs parts of a node (none for layers PaS does not count: BN, activations, adds, pooling). */
export function macsPartsOf(node: GraphNode): MacsPart[] {
  return ruleOf(node).macs?.(node) ?? [];
}
