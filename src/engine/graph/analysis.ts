import { GraphIndex, GraphNode, ModelGraph } from './modelGraph';

/** Layers whose output channel c depends only on input channel c (the channel space passes through). */
const CHANNEL_PRESERVING = new Set([
  'BatchNormalization',
  'ReLU',
  'Activation',
  'Dropout',
  'MaxPooling2D',
  'AveragePooling2D',
  'GlobalAveragePooling2D',
  'ZeroPadding2D',
  'Flatten',
  'DepthwiseBinaryConv',
]);

/** Activations f with f(x) * m == f(x * m) for m in {0, 1} and f(0) == 0: masks commute with them. */
export function isMaskCommutingActivation(node: GraphNode): boolean {
  if (node.className === 'ReLU') return true;
  if (node.className === 'Activation') return ['relu', 'linear', 'relu6', 'elu', 'selu', 'tanh', 'swish', 'gelu', 'leakyrelu'].includes(String(node.config.activation).toLowerCase());
  return false;
}

/**
 * A multi-branch block that reparameterizes into one conv: an Add whose every input is a branch
 * from one source x: BN(conv(x)), conv(x), BN(conv(pad(x))) or BN(x) (identity).
 */
export interface FusableBlock {
  addId: string;
  sourceId: string;
  branches: BlockBranch[];
  /** Every node inside the block except the source (pads, convs, BNs and the Add). */
  memberIds: string[];
}

export interface BlockBranch {
  padId?: string;
  convId?: string;
  bnId?: string;
}

export function findFusableBlocks(index: GraphIndex): FusableBlock[] {
  const blocks: FusableBlock[] = [];
  const single = (id: string) => index.consumersOf(id).length === 1 && !index.isOutput(id);
  for (const add of index.graph.nodes) {
    if (add.className !== 'Add' || add.inputs.length < 2) continue;
    const branches: BlockBranch[] = [];
    let source: string | undefined;
    let ok = true;
    for (const input of add.inputs) {
      const branch: BlockBranch = {};
      let cur = index.node(input);
      if (cur.className === 'BatchNormalization' && single(cur.id)) {
        branch.bnId = cur.id;
        cur = index.node(cur.inputs[0]);
      }
      if (cur.className === 'Conv2D' && single(cur.id) && isPlainConv(cur)) {
        branch.convId = cur.id;
        cur = index.node(cur.inputs[0]);
        if (cur.className === 'ZeroPadding2D' && single(cur.id)) {
          branch.padId = cur.id;
          cur = index.node(cur.inputs[0]);
        }
      }
      if (!branch.convId && !branch.bnId) { ok = false; break; }
      if (source === undefined) source = cur.id;
      else if (source !== cur.id) { ok = false; break; }
      branches.push(branch);
    }
    if (!ok || source === undefined || !branches.some((b) => b.convId)) continue;
    const memberIds = [...branches.flatMap((b) => [b.padId, b.convId, b.bnId].filter((x): x is string => !!x)), add.id];
    blocks.push({ addId: add.id, sourceId: source, branches, memberIds });
  }
  return blocks;
}

function isPlainConv(node: GraphNode): boolean {
  const dilation = node.config.dilation_rate ?? [1, 1];
  const kernel = node.config.kernel_size as number[];
  const activation = node.config.activation ?? 'linear';
  return (
    (Array.isArray(dilation) ? dilation.every((d: number) => d === 1) : dilation === 1) &&
    kernel[0] % 2 === 1 &&
    kernel[1] % 2 === 1 &&
    activation === 'linear' &&
    (node.config.data_format ?? 'channels_last') === 'channels_last'
  );
}

/** A set of channels that must be kept or dropped together: one DBC mask. */
export interface ChannelGroup {
  id: string;
  /** Display name: the first producer's layer (a RepVGG block is named after its block). */
  name: string;
  width: number;
  /** Nodes that create the group's channels: convs, dense layers, fusable blocks (their Add). */
  producerIds: string[];
  /** Every node whose output lies in this channel space. */
  memberIds: string[];
  prunable: boolean;
  /** Why not, when not prunable. */
  fixedReason?: string;
}

export interface GraphAnalysis {
  index: GraphIndex;
  blocks: FusableBlock[];
  blockOfMember: Map<string, FusableBlock>;
  groups: ChannelGroup[];
  /** Group id of every node's output channel space. */
  spaceOf: Map<string, string>;
  groupById: Map<string, ChannelGroup>;
}

class UnionFind {
  private parent = new Map<string, string>();
  find(x: string): string {
    let root = x;
    while (this.parent.has(root) && this.parent.get(root) !== root) root = this.parent.get(root)!;
    this.parent.set(x, root);
    return root;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(rb, ra);
  }
}

const channelsOf = (shape: number[]) => shape[shape.length - 1];

/**
 * Finds the channel groups of a graph: channels joined by a (non-fusable) Add, passed through
 * BN, activations, pooling, padding, depthwise convs and DBC masks share one group. Groups that
 * reach the model's input or output, or a layer whose channel mapping PaS does not handle, are
 * fixed (not prunable).
 */
export function analyzeGraph(graph: ModelGraph): GraphAnalysis {
  const index = new GraphIndex(graph);
  const blocks = findFusableBlocks(index);
  const blockOfMember = new Map<string, FusableBlock>();
  for (const block of blocks) for (const id of block.memberIds) blockOfMember.set(id, block);

  const uf = new UnionFind();
  const fixed = new Map<string, string>();
  const producers = new Set<string>();
  for (const node of graph.nodes) {
    uf.find(node.id);
    const block = blockOfMember.get(node.id);
    if (block) {
      if (node.className === 'ZeroPadding2D') uf.union(node.id, node.inputs[0]);
      else uf.union(block.addId, node.id);
      if (node.id === block.addId) producers.add(node.id);
      continue;
    }
    switch (node.className) {
      case 'InputLayer':
        fixed.set(node.id, 'model input');
        break;
      case 'Conv2D':
      case 'Dense':
        producers.add(node.id);
        break;
      case 'DepthwiseConv2D':
        if ((node.config.depth_multiplier ?? 1) === 1) uf.union(node.id, node.inputs[0]);
        else {
          fixed.set(node.inputs[0], `depthwise conv '${node.layerName}' has depth_multiplier > 1`);
          fixed.set(node.id, `depthwise conv '${node.layerName}' has depth_multiplier > 1`);
        }
        break;
      case 'Add':
        for (const input of node.inputs) uf.union(node.id, input);
        break;
      default:
        if (CHANNEL_PRESERVING.has(node.className)) uf.union(node.id, node.inputs[0]);
        else {
          fixed.set(node.id, `layer '${node.layerName}' (${node.className}) is not channel-wise`);
          for (const input of node.inputs) fixed.set(input, `feeds '${node.layerName}' (${node.className})`);
        }
    }
  }
  for (const id of graph.outputIds) fixed.set(id, 'model output');
  // A Dense layer fed by a non-flattened feature map mixes positions per channel; only [features] inputs are handled.
  for (const node of graph.nodes) {
    if (node.className === 'Dense' && node.inputShapes[0].length !== 1) fixed.set(node.inputs[0], `dense '${node.layerName}' takes a feature map`);
  }

  const groupsByRoot = new Map<string, ChannelGroup>();
  const spaceOf = new Map<string, string>();
  for (const node of graph.nodes) {
    const root = uf.find(node.id);
    let group = groupsByRoot.get(root);
    if (!group) {
      group = { id: root, name: root, width: 0, producerIds: [], memberIds: [], prunable: true };
      groupsByRoot.set(root, group);
    }
    group.memberIds.push(node.id);
    if (producers.has(node.id)) {
      group.producerIds.push(node.id);
      if (group.producerIds.length === 1) {
        group.name = node.className === 'Add' ? node.layerName.replace(/_add$/, '') : node.layerName;
        group.width = channelsOf(node.outputShape);
      }
    }
    if (fixed.has(node.id) && group.prunable) {
      group.prunable = false;
      group.fixedReason = fixed.get(node.id);
    }
    spaceOf.set(node.id, root);
  }
  for (const group of groupsByRoot.values()) {
    if (group.producerIds.length === 0) {
      group.prunable = false;
      group.fixedReason ??= 'no conv or dense layer produces these channels';
      group.width = channelsOf(index.node(group.memberIds[0]).outputShape);
    }
  }
  // Ids independent of union-find roots: the first member in graph order, which inserting masks
  // or pruning does not change, so a group keeps its id across those transforms.
  const groups = [...groupsByRoot.values()];
  const stableId = new Map(groups.map((g) => [g.id, g.memberIds[0]]));
  for (const group of groups) group.id = stableId.get(group.id)!;
  for (const [node, root] of spaceOf) spaceOf.set(node, stableId.get(root)!);
  return { index, blocks, blockOfMember, groups, spaceOf, groupById: new Map(groups.map((g) => [g.id, g])) };
}

/** The prunable groups in graph order. */
export function prunableGroups(analysis: GraphAnalysis): ChannelGroup[] {
  return analysis.groups.filter((g) => g.prunable);
}

/**
 * Where each group's DBC mask goes: after each producer's unit, i.e. after the producer and the
 * chain of single-consumer BN / activation layers that follows it (so after a RepVGG block's ReLU,
 * after conv-BN-ReLU, and before a residual Add). A layer inside the group that turns a zero
 * channel into a non-zero one (a depthwise conv's BN, a BN after an Add) starts a unit of its
 * own and gets the mask again: pruning is only exact if a dropped channel is zero wherever a
 * consumer reads it.
 */
export function maskInsertionPoints(analysis: GraphAnalysis, group: ChannelGroup): string[] {
  const { index } = analysis;
  const walkUnit = (start: string, covered: Set<string>): string => {
    let cur = start;
    covered.add(cur);
    for (;;) {
      const consumers = index.consumersOf(cur);
      if (consumers.length !== 1 || index.isOutput(cur)) break;
      const next = consumers[0];
      const walkable = next.className === 'BatchNormalization' || isMaskCommutingActivation(next);
      if (!walkable || analysis.blockOfMember.has(next.id)) break;
      cur = next.id;
      covered.add(cur);
    }
    return cur;
  };
  const covered = new Set<string>();
  const points = group.producerIds.map((producer) => walkUnit(producer, covered));
  for (const id of group.memberIds) {
    const node = index.node(id);
    const reintroducesValues =
      (node.className === 'DepthwiseConv2D' || node.className === 'BatchNormalization') && !analysis.blockOfMember.has(id);
    if (reintroducesValues && !covered.has(id)) points.push(walkUnit(id, covered));
  }
  return points;
}
