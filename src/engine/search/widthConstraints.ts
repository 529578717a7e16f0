import { PasInputError } from '../errors';

/**
 * Limits on the widths a pruning method may choose (`--min-keep`, `--round-to`, `--keep`).
 * Without them the budget pull, strongest on high-resolution layers, can leave a layer (or a
 * whole residual stage) at one channel: "on target" and useless.
 *
 * The type, the "no constraints" value and the floor rule live in budgetPreview.ts (pure, no
 * imports, so the extension's setup form previews with the very same rule); this module adds the
 * lattice of allowed counts the methods walk.
 */
import { lowestKeptCount, NO_WIDTH_CONSTRAINTS, roundingStep, type RoundTo, type WidthConstraints } from '../budgetPreview';

export { NO_WIDTH_CONSTRAINTS, type RoundTo, type WidthConstraints };

/**
 * The defaults of `pas search` and the extension. `roundTo: 'auto'`: multiples of 8 in groups of
 * 64 channels or more (what XNNPACK computes anyway), any count in narrower ones (budgetPreview.ts,
 * roundingStep).
 */
export const DEFAULT_WIDTH_CONSTRAINTS: WidthConstraints = { minKeep: 0.1, roundTo: 'auto', keep: [] };

/**
 * What runs saved without width constraints (from before they existed) resume with: the defaults
 * of that time, so a resumed run keeps the lattice it started on whatever today's defaults are.
 */
export const CONSTRAINTS_OF_RUNS_WITHOUT_THEM: WidthConstraints = { minKeep: 0.1, roundTo: 1, keep: [] };

export interface ConstrainedGroup {
  id: string;
  name: string;
  width: number;
}

/**
 * The kept counts each group may take under the constraints, ascending. With its rounding step
 * (`roundTo`, or under 'auto' 8 from 64 channels and 1 below), a group narrower than the step
 * takes any count from its floor up (no multiple fits); a wider one takes the multiples of the
 * step at or above its floor, and its full width (which is the unpruned layer, whatever its
 * size). A kept group takes only its full width.
 */
export class WidthLattice {
  private readonly allowedById = new Map<string, number[]>();
  private readonly widthById = new Map<string, number>();

  constructor(readonly groups: ConstrainedGroup[], readonly constraints: WidthConstraints) {
    const names = new Set(groups.map((g) => g.name));
    const unknown = constraints.keep.filter((name) => !names.has(name));
    if (unknown.length > 0) {
      throw new PasInputError(`--keep names no prunable group: ${unknown.join(', ')}; the groups are: ${groups.map((g) => g.name).join(', ')}`);
    }
    const kept = new Set(constraints.keep);
    for (const g of groups) this.widthById.set(g.id, g.width);
    for (const g of groups) this.allowedById.set(g.id, kept.has(g.name) ? [g.width] : allowedCounts(g.width, constraints));
  }

  /** Allowed counts of a group, ascending (the last is its full width). */
  allowed(id: string): number[] {
    return this.allowedById.get(id)!;
  }

  /** The step between a group's allowed counts below its full width (1: any count), as the constraints give it. */
  step(id: string): number {
    return roundingStep(this.widthById.get(id)!, this.constraints.roundTo);
  }

  /** True for a group held at full width. */
  isFixed(id: string): boolean {
    return this.allowed(id).length === 1;
  }

  /** The smallest count a group may keep. */
  floor(id: string): number {
    return this.allowed(id)[0];
  }

  /** Every group at its floor: the narrowest model the constraints allow. */
  floors(): Map<string, number> {
    return new Map(this.groups.map((g) => [g.id, this.floor(g.id)]));
  }

  /** The allowed count nearest to `count` (the larger one on a tie). */
  nearest(id: string, count: number): number {
    let best = this.allowed(id)[0];
    for (const c of this.allowed(id)) if (Math.abs(c - count) <= Math.abs(best - count)) best = c;
    return best;
  }

  /** The next allowed count below `count`, or undefined at the floor. */
  below(id: string, count: number): number | undefined {
    const allowed = this.allowed(id);
    for (let i = allowed.length - 1; i >= 0; i--) if (allowed[i] < count) return allowed[i];
    return undefined;
  }

  /** The next allowed count above `count`, or undefined at full width. */
  above(id: string, count: number): number | undefined {
    return this.allowed(id).find((c) => c > count);
  }
}

function allowedCounts(width: number, constraints: WidthConstraints): number[] {
  // The floor rule of the budget preview (an empty name: held groups are handled by the caller).
  const floor = lowestKeptCount('', width, { ...constraints, keep: [] });
  const step = roundingStep(width, constraints.roundTo);
  const counts: number[] = [];
  if (step > 1 && width >= step) {
    for (let c = floor; c < width; c += step) counts.push(c);
  } else {
    for (let c = floor; c < width; c++) counts.push(c);
  }
  counts.push(width);
  return counts;
}

/** Checks the values of constraints given on the command line or in settings. */
export function validateWidthConstraints(constraints: WidthConstraints): void {
  if (!(constraints.minKeep >= 0 && constraints.minKeep <= 1)) throw new PasInputError(`--min-keep must be a fraction in [0, 1], got ${constraints.minKeep}`);
  const { roundTo } = constraints;
  if (roundTo !== 'auto' && !(Number.isInteger(roundTo) && roundTo >= 1)) throw new PasInputError(`--round-to must be auto or a positive integer, got ${JSON.stringify(roundTo)}`);
}
