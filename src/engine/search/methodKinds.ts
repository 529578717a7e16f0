/**
 * The pruning methods' names and kinds, without their selection code: what the extension host
 * (which must not load tfjs) and `src/engine/compare` need. `methods.ts` builds the full method
 * table on these kinds, so the two cannot disagree.
 */
import type { PruneMethod } from '../../shared/workerProtocol';

/**
 * `search`: the masks are trained under the budget loss (PaS) and projected onto the budget;
 * `select`: the channels are chosen once, before fine-tuning.
 */
export type PruneMethodKind = 'search' | 'select';

/** Keyed by the protocol's `PruneMethod`: a name added there without a kind here is a type error. */
export const PRUNE_METHOD_KINDS: Record<PruneMethod, PruneMethodKind> = { pas: 'search', uniform: 'select', magnitude: 'select' };

/** Method names in table order (CLI choices, benchmark rows, compare rows). */
export const PRUNE_METHOD_NAMES = Object.keys(PRUNE_METHOD_KINDS) as PruneMethod[];

/** True for methods whose weight training after the baseline has a search phase. */
export function methodSearches(method: PruneMethod): boolean {
  return PRUNE_METHOD_KINDS[method] === 'search';
}
