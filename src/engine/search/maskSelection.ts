import { ChannelGroup, GraphAnalysis, prunableGroups } from '../graph/analysis';
import { ruleOf } from '../graph/layerRules';
import { ModelGraph } from '../graph/modelGraph';
import { keptChannelIndices } from '../layers/dbc';
import { MacsBudget } from '../budget/macsBudget';

/** Kept channel indices per group id. */
export type ChannelSelection = Map<string, number[]>;

/**
 * Importance of each channel of a group for the magnitude criteria: |gamma| of the BNs after the
 * group's producers (for a RepVGG block, the 3x3 BN's gamma plus the 1x1 BN's, as the PaS paper's
 * slimming baseline does), or the L2 norm of the producer's kernel slice where no BN follows.
 */
export function channelImportance(graph: ModelGraph, analysis: GraphAnalysis, group: ChannelGroup): Float32Array {
  const { index } = analysis;
  const importance = new Float32Array(group.width);
  const addGamma = (bnId: string) => {
    const gamma = graph.weights.get(index.node(bnId).layerName)?.gamma?.values;
    if (gamma) gamma.forEach((g, c) => (importance[c] += Math.abs(g)));
  };
  const addKernelNorm = (convId: string) => {
    const node = index.node(convId);
    const where = ruleOf(node).outputKernel;
    const kernel = where && graph.weights.get(node.layerName)?.[where.weight];
    if (!where || !kernel) return;
    const inner = kernel.shape.slice(where.axis + 1).reduce((a, b) => a * b, 1);
    const out = kernel.shape[where.axis];
    const sums = new Float64Array(out);
    kernel.values.forEach((v, i) => (sums[Math.floor(i / inner) % out] += v * v));
    sums.forEach((s, c) => (importance[c] += Math.sqrt(s)));
  };
  for (const producer of group.producerIds) {
    const block = analysis.blockOfMember.get(producer);
    if (block) {
      for (const branch of block.branches) if (branch.convId && branch.bnId) addGamma(branch.bnId);
      continue;
    }
    const next = index.consumersOf(producer);
    if (next.length === 1 && ruleOf(next[0]).deploy?.kind === 'affine') addGamma(next[0].id);
    else addKernelNorm(producer);
  }
  return importance;
}

/** Indices of the k largest values, ascending by index. */
function topK(values: Float32Array, k: number): number[] {
  return [...values.keys()].sort((a, b) => values[b] - values[a] || a - b).slice(0, k).sort((a, b) => a - b);
}

/**
 * The uniform baseline: every prunable layer keeps the same fraction of its channels (the most
 * important ones), the largest fraction whose MACs stay within the target.
 */
export function uniformSelection(graph: ModelGraph, budget: MacsBudget, targetMacs: number): ChannelSelection {
  const groups = prunableGroups(budget.analysis);
  const countsAt = (fraction: number) => new Map(groups.map((g) => [g.id, Math.max(1, Math.round(g.width * fraction))]));
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (budget.macsOf(countsAt(mid)) <= targetMacs) lo = mid;
    else hi = mid;
  }
  // Rounding each layer leaves up to a few percent of the budget unused: hand it out one channel
  // at a time to the layer that is furthest below the others' fraction, while it fits.
  const counts = countsAt(lo);
  for (;;) {
    const candidates = groups
      .filter((g) => counts.get(g.id)! < g.width)
      .sort((a, b) => counts.get(a.id)! / a.width - counts.get(b.id)! / b.width);
    const fits = candidates.find((g) => {
      counts.set(g.id, counts.get(g.id)! + 1);
      const ok = budget.macsOf(counts) <= targetMacs;
      counts.set(g.id, counts.get(g.id)! - 1);
      return ok;
    });
    if (!fits) break;
    counts.set(fits.id, counts.get(fits.id)! + 1);
  }
  return new Map(groups.map((g) => [g.id, topK(channelImportance(graph, budget.analysis, g), counts.get(g.id)!)]));
}

/**
 * The magnitude baseline (network slimming): rank all channels of all layers together by
 * importance and drop the smallest until the MACs are within the target. A layer keeps at least
 * one channel.
 */
export function magnitudeSelection(graph: ModelGraph, budget: MacsBudget, targetMacs: number): ChannelSelection {
  const groups = prunableGroups(budget.analysis);
  const importance = new Map(groups.map((g) => [g.id, channelImportance(graph, budget.analysis, g)]));
  const kept = new Map(groups.map((g) => [g.id, new Set([...Array(g.width).keys()])]));
  const ranked = groups.flatMap((g) => [...importance.get(g.id)!].map((value, c) => ({ group: g.id, c, value })));
  ranked.sort((a, b) => a.value - b.value);
  const counts = () => new Map([...kept].map(([id, set]) => [id, set.size]));
  for (const channel of ranked) {
    if (budget.macsOf(counts()) <= targetMacs) break;
    const set = kept.get(channel.group)!;
    if (set.size > 1) set.delete(channel.c);
  }
  return new Map([...kept].map(([id, set]) => [id, [...set].sort((a, b) => a - b)]));
}

/**
 * Snaps a searched selection onto the budget: the budget loss pulls the MACs onto the target but
 * stops wherever SGD leaves it, one channel's MACs on either side. Over the target, the kept
 * channels with the lowest latents are dropped; well under it, the dropped channels with the
 * highest latents come back while the MACs stay within the target. Returns how many channels moved.
 */
export function projectOntoBudget(latents: Map<string, Float32Array>, budget: MacsBudget, targetMacs: number): { selection: ChannelSelection; moved: number } {
  const kept = new Map([...latents].map(([id, values]) => [id, new Set(keptChannelIndices(values))]));
  const counts = () => new Map([...kept].map(([id, set]) => [id, set.size]));
  const all = [...latents].flatMap(([group, values]) => [...values].map((value, c) => ({ group, c, value })));
  let moved = 0;
  if (budget.macsOf(counts()) > targetMacs) {
    const candidates = all.filter((ch) => kept.get(ch.group)!.has(ch.c)).sort((a, b) => a.value - b.value);
    for (const ch of candidates) {
      if (budget.macsOf(counts()) <= targetMacs) break;
      const set = kept.get(ch.group)!;
      if (set.size > 1) {
        set.delete(ch.c);
        moved++;
      }
    }
  } else {
    const candidates = all.filter((ch) => !kept.get(ch.group)!.has(ch.c)).sort((a, b) => b.value - a.value);
    for (const ch of candidates) {
      const set = kept.get(ch.group)!;
      set.add(ch.c);
      if (budget.macsOf(counts()) > targetMacs) set.delete(ch.c);
      else moved++;
    }
  }
  return { selection: new Map([...kept].map(([id, set]) => [id, [...set].sort((a, b) => a - b)])), moved };
}

/** Latent values that encode a selection: 1 for kept channels, 0 for dropped ones. */
export function selectionToLatents(selection: ChannelSelection, widths: Map<string, number>): Map<string, Float32Array> {
  const latents = new Map<string, Float32Array>();
  for (const [id, keep] of selection) {
    const values = new Float32Array(widths.get(id)!);
    for (const c of keep) values[c] = 1;
    latents.set(id, values);
  }
  return latents;
}
