import { ChannelGroup, GraphAnalysis, prunableGroups } from '../graph/analysis';
import { ruleOf } from '../graph/layerRules';
import { ModelGraph } from '../graph/modelGraph';
import { keptChannelIndices } from '../layers/dbc';
import { MacsBudget } from '../budget/macsBudget';
import { NO_WIDTH_CONSTRAINTS, WidthLattice } from './widthConstraints';

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

/** Channel indices ordered from the most to the least important (lower index first on ties). */
function rankChannels(scores: Float32Array): number[] {
  return [...scores.keys()].sort((a, b) => scores[b] - scores[a] || a - b);
}

/** Per group, the channels in keeping order: a group of count k keeps the first k. */
type ChannelOrder = Map<string, number[]>;

function selectionOf(counts: Map<string, number>, order: ChannelOrder): ChannelSelection {
  return new Map([...counts].map(([id, k]) => [id, order.get(id)!.slice(0, k).sort((a, b) => a - b)]));
}

/** Mean score of the channels between counts `from` and `to` in a group's keeping order. */
function meanScore(scores: Float32Array, order: number[], from: number, to: number): number {
  const [lo, hi] = from < to ? [from, to] : [to, from];
  let sum = 0;
  for (let i = lo; i < hi; i++) sum += scores[order[i]];
  return sum / Math.max(1, hi - lo);
}

/**
 * Steps groups down their allowed counts until the MACs are within the target: each step takes
 * the group whose next removed channels have the lowest mean score. With unconstrained widths a
 * step is one channel, so this drops channels in global score order (network slimming's rule).
 */
function descendToBudget(counts: Map<string, number>, scores: Map<string, Float32Array>, order: ChannelOrder, lattice: WidthLattice, budget: MacsBudget, targetMacs: number): void {
  while (budget.macsOf(counts) > targetMacs) {
    let best: { id: string; next: number; score: number } | undefined;
    for (const [id, count] of counts) {
      const next = lattice.below(id, count);
      if (next === undefined) continue;
      const score = meanScore(scores.get(id)!, order.get(id)!, next, count);
      if (!best || score < best.score) best = { id, next, score };
    }
    if (!best) return; // every group at its floor: the caller refused such targets up front
    counts.set(best.id, best.next);
  }
}

/**
 * Steps groups up their allowed counts while the MACs stay within the target, the group that
 * `priority` ranks first (lowest value) among those whose step still fits first.
 */
function ascendWithinBudget(counts: Map<string, number>, lattice: WidthLattice, budget: MacsBudget, targetMacs: number, priority: (id: string, count: number, next: number) => number): void {
  for (;;) {
    const candidates = [...counts]
      .map(([id, count]) => ({ id, count, next: lattice.above(id, count) }))
      .filter((c): c is { id: string; count: number; next: number } => c.next !== undefined)
      .sort((a, b) => priority(a.id, a.count, a.next) - priority(b.id, b.count, b.next));
    const fits = candidates.find((c) => {
      counts.set(c.id, c.next);
      const ok = budget.macsOf(counts) <= targetMacs;
      counts.set(c.id, c.count);
      return ok;
    });
    if (!fits) return;
    counts.set(fits.id, fits.next);
  }
}

/** The lattice of a budget's groups without constraints (every count from 1 to the width). */
export function unconstrainedLattice(budget: MacsBudget): WidthLattice {
  return new WidthLattice(budget.groups, NO_WIDTH_CONSTRAINTS);
}

/**
 * The uniform baseline: every prunable layer keeps the same fraction of its channels (the most
 * important ones, snapped to its allowed counts), the largest fraction whose MACs stay within
 * the target.
 */
export function uniformSelection(graph: ModelGraph, budget: MacsBudget, targetMacs: number, lattice = unconstrainedLattice(budget)): ChannelSelection {
  const groups = prunableGroups(budget.analysis);
  const countsAt = (fraction: number) => new Map(groups.map((g) => [g.id, lattice.nearest(g.id, Math.round(g.width * fraction))]));
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (budget.macsOf(countsAt(mid)) <= targetMacs) lo = mid;
    else hi = mid;
  }
  // Rounding each layer leaves up to a few percent of the budget unused: hand it out one step
  // at a time to the layer that is furthest below the others' fraction, while it fits.
  const counts = countsAt(lo);
  const widthOf = new Map(groups.map((g) => [g.id, g.width]));
  ascendWithinBudget(counts, lattice, budget, targetMacs, (id, count) => count / widthOf.get(id)!);
  const order = new Map(groups.map((g) => [g.id, rankChannels(channelImportance(graph, budget.analysis, g))]));
  return selectionOf(counts, order);
}

/**
 * The magnitude baseline (network slimming): rank all channels of all layers together by
 * importance and drop the smallest until the MACs are within the target, each layer within its
 * allowed counts (at least one channel).
 */
export function magnitudeSelection(graph: ModelGraph, budget: MacsBudget, targetMacs: number, lattice = unconstrainedLattice(budget)): ChannelSelection {
  const groups = prunableGroups(budget.analysis);
  const scores = new Map(groups.map((g) => [g.id, channelImportance(graph, budget.analysis, g)]));
  const order = new Map([...scores].map(([id, s]) => [id, rankChannels(s)]));
  const counts = new Map(groups.map((g) => [g.id, g.width]));
  descendToBudget(counts, scores, order, lattice, budget, targetMacs);
  return selectionOf(counts, order);
}

/** Kept counts of latents: the mask layer's own rule ({@link keptChannelIndices}). */
export function thresholdCounts(latents: Map<string, Float32Array>): Map<string, number> {
  return new Map([...latents].map(([id, values]) => [id, keptChannelIndices(values).length]));
}

/**
 * Snaps a searched selection onto the budget and the width constraints: the budget loss pulls
 * the MACs onto the target but stops wherever SGD leaves it, a few channels' MACs on either side.
 * Each group first takes the allowed count nearest its searched count; then, over the target,
 * the steps with the lowest latents are dropped, and then, under it, the steps with the highest
 * latents come back while the MACs stay within the target. Channels are kept in latent order. Returns how
 * many channels changed state relative to the searched masks.
 */
export function projectOntoBudget(
  latents: Map<string, Float32Array>,
  budget: MacsBudget,
  targetMacs: number,
  lattice = unconstrainedLattice(budget),
): { selection: ChannelSelection; moved: number } {
  const order = new Map([...latents].map(([id, values]) => [id, rankChannels(values)]));
  const searched = thresholdCounts(latents);
  const counts = new Map([...searched].map(([id, k]) => [id, lattice.nearest(id, k)]));
  if (budget.macsOf(counts) > targetMacs) descendToBudget(counts, latents, order, lattice, budget, targetMacs);
  // Under the target, from the start or because the last step down overshot it (a step of 8
  // channels in a wide layer under --round-to auto left runs 5-8% under the target), the steps
  // with the highest latents come back while the MACs stay within it.
  ascendWithinBudget(counts, lattice, budget, targetMacs, (id, count, next) => -meanScore(latents.get(id)!, order.get(id)!, count, next));
  // Kept sets are prefixes of the same order, so the channels that moved are the count difference.
  let moved = 0;
  for (const [id, k] of counts) moved += Math.abs(k - searched.get(id)!);
  return { selection: selectionOf(counts, order), moved };
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
