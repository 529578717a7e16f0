import { analyzeGraph, prunableGroups } from '../graph/analysis';
import { ModelGraph } from '../graph/modelGraph';
import { channelImportance } from './maskSelection';

/**
 * Initial latent of a searched mask: the DBC layer's own default in the official PaS code (its
 * model builders use 1.0). From 1.0 the budget pull needs to move a latent by 0.5 before any
 * channel changes state; in a short search the gain grows all that time and the layers then
 * cross the threshold together (docs/search.md). From 0.6 the masks respond within a few steps.
 */
export const SEARCH_LATENT_INIT = 0.6;

/**
 * Default spread of the importance prior (docs/quality.md). With every latent of a layer starting
 * at the same value, the budget pull (the same for every channel of a layer) moves them together,
 * and which ones cross the threshold first is decided by a few noisy cross-entropy steps: in the
 * short searches measured, PaS kept worse channels than the baselines' largest-|gamma| ones. A
 * spread of 0.1 puts the layer's latents in [0.55, 0.65], every channel kept at the start (the
 * spread stays under 2 x (init - 0.5)), ordered by importance, with neighbours in that order only
 * 0.1 / (width - 1) apart, so the cross-entropy's gradient still reorders them within a few steps.
 */
export const DEFAULT_LATENT_PRIOR = 0.1;

/**
 * Per-group initial latents of a PaS search on an unmasked, trained graph: `base` plus an
 * importance prior, linear in each channel's rank within its group by the baselines' importance
 * (BN |gamma|, {@link channelImportance}): the most important channel gets base + spread / 2, the
 * least base - spread / 2. Ranks rather than raw |gamma| make the prior independent of the BN
 * scale. `spread` 0 is the plain constant init. Keys are the group ids `insertMasks` uses.
 */
export function initialSearchLatents(graph: ModelGraph, spread: number, base = SEARCH_LATENT_INIT): Map<string, Float32Array> {
  if (!(spread >= 0) || base - spread / 2 <= 0.5) {
    throw new Error(`latent prior spread must be in [0, ${2 * (base - 0.5)}) so that every channel starts kept; got ${spread}`);
  }
  const analysis = analyzeGraph(graph);
  const latents = new Map<string, Float32Array>();
  for (const group of prunableGroups(analysis)) {
    const values = new Float32Array(group.width).fill(base);
    if (spread > 0 && group.width > 1) {
      const importance = channelImportance(graph, analysis, group);
      // Most important first; the lower index first on ties, as the baselines rank.
      const order = [...importance.keys()].sort((a, b) => importance[b] - importance[a] || a - b);
      order.forEach((channel, rank) => (values[channel] = base + spread * (0.5 - rank / (group.width - 1))));
    }
    latents.set(group.id, values);
  }
  return latents;
}
