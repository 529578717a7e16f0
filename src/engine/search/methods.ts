import type { PruneMethod } from '../../shared/workerProtocol';
import { ModelGraph } from '../graph/modelGraph';
import { MacsBudget } from '../budget/macsBudget';
import { ChannelSelection, magnitudeSelection, uniformSelection } from './maskSelection';
import { WidthLattice } from './widthConstraints';
import { PRUNE_METHOD_KINDS, type PruneMethodKind } from './methodKinds';

export { methodSearches, PRUNE_METHOD_NAMES } from './methodKinds';

/** How a pruning method decides the widths. */
export interface PruneMethodSpec {
  /** One line for `--help` and the docs. */
  description: string;
  /**
   * `search`: the masks are trained under the budget loss (PaS) and projected onto the budget;
   * `select`: the channels are chosen once, before fine-tuning, by `select`.
   */
  kind: PruneMethodKind;
  /** The one-shot choice of a `select` method, within the budget and the width constraints. */
  select?: (graph: ModelGraph, budget: MacsBudget, targetMacs: number, lattice: WidthLattice) => ChannelSelection;
}

/**
 * Every pruning method, keyed by its name. The key type is the protocol's `PruneMethod`, so a name
 * added there without a row here (or a row without a name) is a type error, never a fallback.
 */
export const PRUNE_METHODS: Record<PruneMethod, PruneMethodSpec> = {
  pas: { description: 'Pruning-as-Search: DBC masks trained with the weights under the MACs budget loss', kind: PRUNE_METHOD_KINDS.pas },
  uniform: { description: 'the same fraction of every layer (most important channels by BN gamma)', kind: PRUNE_METHOD_KINDS.uniform, select: uniformSelection },
  magnitude: { description: 'network slimming: drop the channels with the smallest BN gamma across all layers', kind: PRUNE_METHOD_KINDS.magnitude, select: magnitudeSelection },
};
