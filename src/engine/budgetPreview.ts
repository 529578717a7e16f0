/**
 * The MACs budget a run could reach under width constraints, from the plain data `pas inspect
 * --json` reports (the MACs formula's terms and the prunable groups): the extension's setup form
 * previews the target and the lowest reachable fraction with it, before any worker starts.
 *
 * Pure arithmetic with no imports, so the extension host and the webview can bundle it without
 * pulling in tfjs.
 */

/**
 * One part of a layer of the deployed form: MACs = coefficient * c_in * c_out, where c_in is the
 * sum of `input` (a consumer of a concatenation reads several groups) and c_out the sum of
 * `output`; each entry is a prunable group (by name) or a fixed channel count, and an empty list
 * counts as 1 (a depthwise conv's MACs do not scale with its output).
 */
export interface MacsFormulaTerm {
  coefficient: number;
  input: Array<string | number>;
  output: Array<string | number>;
}

export interface WidthConstraints {
  /** No group below ceil(minKeep * width) channels, and never below 1. */
  minKeep: number;
  /** Kept counts are multiples of this where the width allows (1: any count). */
  roundTo: number;
  /** Groups held at full width, by name. */
  keep: readonly string[];
}

export const NO_WIDTH_CONSTRAINTS: WidthConstraints = { minKeep: 0, roundTo: 1, keep: [] };

/**
 * The fewest channels a group of `width` may keep. Rounding up to a multiple of `roundTo` applies
 * where the width allows one at or above the minimum; a group narrower than `roundTo` keeps the
 * minimum, and one whose next multiple would exceed its width keeps its full width.
 */
export function lowestKeptCount(name: string, width: number, constraints: WidthConstraints): number {
  if (constraints.keep.includes(name)) return width;
  const minimum = Math.min(width, Math.max(1, Math.ceil(constraints.minKeep * width - 1e-9)));
  const step = Math.max(1, Math.floor(constraints.roundTo));
  if (step === 1 || width < step) return minimum;
  const rounded = Math.ceil(minimum / step) * step;
  return rounded <= width ? rounded : width;
}

/** MACs of the deployed model with each group at `counts[name]` (full width when missing). */
export function evaluateMacsTerms(terms: readonly MacsFormulaTerm[], counts: ReadonlyMap<string, number>, widths: ReadonlyMap<string, number>): number {
  const value = (ref: string | number) => (typeof ref === 'number' ? ref : counts.get(ref) ?? widths.get(ref) ?? NaN);
  const total = (refs: Array<string | number>) => (refs.length === 0 ? 1 : refs.reduce<number>((sum, ref) => sum + value(ref), 0));
  return terms.reduce((sum, t) => sum + t.coefficient * total(t.input) * total(t.output), 0);
}

export interface BudgetPreview {
  fullMacs: number;
  targetMacs: number;
  /** MACs with every group at its lowest kept count (the formula grows with every count). */
  lowestMacs: number;
  lowestFraction: number;
  reachable: boolean;
}

export function previewBudget(
  terms: readonly MacsFormulaTerm[],
  groups: ReadonlyArray<{ name: string; width: number }>,
  constraints: WidthConstraints,
  targetFraction: number,
): BudgetPreview {
  const widths = new Map(groups.map((g) => [g.name, g.width]));
  const fullMacs = evaluateMacsTerms(terms, new Map(), widths);
  const lowest = new Map(groups.map((g) => [g.name, lowestKeptCount(g.name, g.width, constraints)]));
  const lowestMacs = evaluateMacsTerms(terms, lowest, widths);
  const lowestFraction = fullMacs > 0 ? lowestMacs / fullMacs : 1;
  return { fullMacs, targetMacs: targetFraction * fullMacs, lowestMacs, lowestFraction, reachable: targetFraction > lowestFraction };
}
