import { ruleOf } from './layerRules';
import { GraphIndex, GraphNode, ModelGraph } from './modelGraph';

/** Activations (and other per-channel layers) f with f(x) * m == f(x * m) for m in {0, 1}: masks commute with them. */
export function isMaskCommutingActivation(node: GraphNode): boolean {
  return ruleOf(node).commutesWithMask?.(node) ?? false;
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
  const roleOf = (node: GraphNode) => ruleOf(node).deploy?.kind;
  for (const add of index.graph.nodes) {
    if (roleOf(add) !== 'sum' || add.inputs.length < 2) continue;
    const branches: BlockBranch[] = [];
    let source: string | undefined;
    let ok = true;
    for (const input of add.inputs) {
      const branch: BlockBranch = {};
      let cur = index.node(input);
      if (roleOf(cur) === 'affine' && single(cur.id)) {
        branch.bnId = cur.id;
        cur = index.node(cur.inputs[0]);
      }
      const deploy = ruleOf(cur).deploy;
      if (deploy?.kind === 'linear' && deploy.branchOfBlock?.(cur) && single(cur.id)) {
        branch.convId = cur.id;
        cur = index.node(cur.inputs[0]);
        if (roleOf(cur) === 'padding' && single(cur.id)) {
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
  /**
   * The channels of every node's output as consecutive segments, each one whole group (by id):
   * one segment for most layers, one per input for a concatenation, one per position after a Flatten.
   */
  layoutOf: Map<string, string[]>;
  /** Group id of every node whose output is exactly one group. */
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
const sameWidths = (a: number[], b: number[]) => a.length === b.length && a.every((w, i) => w === b[i]);

/**
 * Finds the channel groups of a graph by asking each layer's rule how it moves channels:
 * convs and dense layers create a space; per-channel layers follow their input; element-wise
 * merges (Add, Multiply with broadcasting) couple their inputs' spaces into one group; a
 * concatenation lays its inputs' groups side by side. Groups that reach the model's input or
 * output, an opaque or unknown layer, or a layer that re-creates dropped channels after a
 * concatenation are fixed (held at full width), each with the reason.
 */
export function analyzeGraph(graph: ModelGraph): GraphAnalysis {
  const index = new GraphIndex(graph);
  const blocks = findFusableBlocks(index);
  const blockOfMember = new Map<string, FusableBlock>();
  for (const block of blocks) for (const id of block.memberIds) blockOfMember.set(id, block);

  const uf = new UnionFind();
  const widthOfKey = new Map<string, number>();
  const fixedKeys = new Map<string, string>();
  const producers = new Set<string>();
  const keysOf = new Map<string, string[]>();
  const newSpace = (id: string, width: number, fixedReason?: string): string[] => {
    uf.find(id);
    widthOfKey.set(id, width);
    if (fixedReason) fixedKeys.set(id, fixedReason);
    return [id];
  };
  const fix = (keys: string[], reason: string) => {
    for (const key of keys) if (!fixedKeys.has(key)) fixedKeys.set(key, reason);
  };
  const widthsOf = (keys: string[]) => keys.map((k) => widthOfKey.get(k)!);

  for (const node of graph.nodes) {
    const block = blockOfMember.get(node.id);
    if (block) {
      // A fusable block's pads read the source's channels; its convs, BNs and Add make the block's output.
      if (node.id === block.addId) {
        producers.add(node.id);
        keysOf.set(node.id, keysOf.get(node.id) ?? newSpace(node.id, channelsOf(node.outputShape)));
      } else if (ruleOf(node).deploy?.kind === 'padding') {
        keysOf.set(node.id, keysOf.get(node.inputs[0])!);
      } else {
        if (!widthOfKey.has(block.addId)) newSpace(block.addId, channelsOf(index.node(block.addId).outputShape));
        keysOf.set(node.id, [block.addId]);
      }
      continue;
    }
    const inputs = node.inputs.map((id) => keysOf.get(id)!);
    const move = ruleOf(node).channels(node);
    let keys: string[];
    switch (move.kind) {
      case 'input':
        keys = newSpace(node.id, channelsOf(node.outputShape), "the model's input");
        break;
      case 'create':
        producers.add(node.id);
        keys = newSpace(node.id, channelsOf(node.outputShape));
        break;
      case 'follow':
        keys = inputs[0];
        break;
      case 'flatten': {
        const positions = node.inputShapes[0].slice(0, -1).reduce((a, b) => a * b, 1);
        keys = Array.from({ length: positions }, () => inputs[0]).flat();
        break;
      }
      case 'concatenate':
        keys = inputs.flat();
        break;
      case 'join': {
        // A width-1 input broadcast over every channel (a spatial gate) does not couple channels.
        const width = channelsOf(node.outputShape);
        const coupled = inputs.filter((k, i) => !(width > 1 && channelsOf(node.inputShapes[i]) === 1));
        for (const k of inputs) if (!coupled.includes(k)) fix(k, `broadcast across channels by ${node.className} '${node.layerName}'`);
        keys = coupled[0];
        if (coupled.some((k) => !sameWidths(widthsOf(k), widthsOf(keys)))) {
          const reason = `joined by ${node.className} '${node.layerName}' with channels at different offsets`;
          for (const k of coupled) fix(k, reason);
          keys = newSpace(node.id, width, reason);
        } else {
          for (const k of coupled.slice(1)) k.forEach((key, i) => uf.union(keys[i], key));
        }
        break;
      }
      case 'opaque':
        for (const k of inputs) fix(k, move.inputsReason);
        keys = newSpace(node.id, channelsOf(node.outputShape), move.outputReason);
        break;
    }
    keysOf.set(node.id, keys);
  }
  for (const id of graph.outputIds) fix(keysOf.get(id)!, "the model's output");
  // A layer that turns a dropped (zero) channel into a non-zero one needs a mask after it; a mask
  // covers one group, so such a layer on concatenated (or flattened) channels holds them fixed.
  for (const node of graph.nodes) {
    const keys = keysOf.get(node.id)!;
    if (keys.length > 1 && !blockOfMember.has(node.id) && reintroducesValues(node)) {
      fix(keys, `re-created after a concatenation by ${node.className} '${node.layerName}'`);
    }
  }

  const groupsByRoot = new Map<string, ChannelGroup>();
  const groupOfRoot = (root: string) => {
    let group = groupsByRoot.get(root);
    if (!group) {
      group = { id: root, name: root, width: widthOfKey.get(root)!, producerIds: [], memberIds: [], prunable: true };
      groupsByRoot.set(root, group);
    }
    return group;
  };
  const rootLayout = new Map<string, string[]>();
  for (const node of graph.nodes) {
    const roots = keysOf.get(node.id)!.map((k) => uf.find(k));
    rootLayout.set(node.id, roots);
    for (const root of new Set(roots)) groupOfRoot(root).memberIds.push(node.id);
    if (producers.has(node.id)) {
      const group = groupOfRoot(roots[0]);
      group.producerIds.push(node.id);
      if (group.producerIds.length === 1) group.name = blockOfMember.has(node.id) ? node.layerName.replace(/_add$/, '') : node.layerName;
    }
  }
  // Fixed reasons in graph order of the keys, so a group reports the first thing that fixed it.
  for (const [key, reason] of fixedKeys) {
    const group = groupOfRoot(uf.find(key));
    if (group.prunable) {
      group.prunable = false;
      group.fixedReason = reason;
    }
  }
  for (const group of groupsByRoot.values()) {
    if (group.producerIds.length === 0 && group.prunable) {
      group.prunable = false;
      group.fixedReason = 'no conv or dense layer produces these channels';
    }
  }
  // Ids independent of union-find roots: the first member in graph order, which inserting masks
  // or pruning does not change, so a group keeps its id across those transforms.
  const groups = [...groupsByRoot.values()];
  const stableId = new Map(groups.map((g) => [g.id, g.memberIds[0]]));
  for (const group of groups) group.id = stableId.get(group.id)!;
  const layoutOf = new Map<string, string[]>();
  const spaceOf = new Map<string, string>();
  for (const [node, roots] of rootLayout) {
    const layout = roots.map((r) => stableId.get(r)!);
    layoutOf.set(node, layout);
    if (layout.length === 1) spaceOf.set(node, layout[0]);
  }
  return { index, blocks, blockOfMember, groups, layoutOf, spaceOf, groupById: new Map(groups.map((g) => [g.id, g])) };
}

/** A per-channel layer that can turn an all-zero channel into a non-zero one (BN, sigmoid, a biased depthwise conv). */
function reintroducesValues(node: GraphNode): boolean {
  const rule = ruleOf(node);
  return rule.channels(node).kind === 'follow' && !(rule.keepsZero?.(node) ?? false);
}

/** The prunable groups in graph order. */
export function prunableGroups(analysis: GraphAnalysis): ChannelGroup[] {
  return analysis.groups.filter((g) => g.prunable);
}

/** Groups a conv or dense layer produces that are held at full width, with why (for inspect's pre-flight). */
export function fixedGroups(analysis: GraphAnalysis): ChannelGroup[] {
  return analysis.groups.filter((g) => !g.prunable && g.producerIds.length > 0);
}

/**
 * Indices (into a node's output channels) of the channels kept when each group keeps `kept`
 * (groups not listed keep all): for a concatenation, each input's kept channels at its offset.
 * Undefined when every channel is kept.
 */
export function keptIndicesOfNode(analysis: GraphAnalysis, nodeId: string, kept: Map<string, number[]>): number[] | undefined {
  const layout = analysis.layoutOf.get(nodeId)!;
  if (!layout.some((g) => kept.has(g))) return undefined;
  const indices: number[] = [];
  let offset = 0;
  for (const groupId of layout) {
    const width = analysis.groupById.get(groupId)!.width;
    const keep = kept.get(groupId);
    if (keep) for (const c of keep) indices.push(offset + c);
    else for (let c = 0; c < width; c++) indices.push(offset + c);
    offset += width;
  }
  return indices;
}

/**
 * Where each group's DBC mask goes: after each producer's unit, i.e. after the producer and the
 * chain of single-consumer BN / activation layers that follows it (so after a RepVGG block's ReLU,
 * after conv-BN-ReLU, and before a residual Add). A layer inside the group that turns a zero
 * channel into a non-zero one (a depthwise conv's bias, a BN after an Add, a sigmoid) starts a
 * unit of its own and gets the mask again: pruning is only exact if a dropped channel is zero
 * wherever a consumer reads it.
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
      if (!ruleOf(next).partOfUnit?.(next) || analysis.blockOfMember.has(next.id)) break;
      cur = next.id;
      covered.add(cur);
    }
    return cur;
  };
  const covered = new Set<string>();
  const points = group.producerIds.map((producer) => walkUnit(producer, covered));
  for (const id of group.memberIds) {
    const node = index.node(id);
    if (reintroducesValues(node) && !analysis.blockOfMember.has(id) && !covered.has(id)) points.push(walkUnit(id, covered));
  }
  return points;
}
