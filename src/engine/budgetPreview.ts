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

/**
 * `--round-to`: a number N (kept counts are multiples of N where the width allows; 1 = any count),
 * or 'auto', a step chosen per group from its width (roundingStep).
 */
export type RoundTo = number | 'auto';

export interface WidthConstraints {
  /** No group below ceil(minKeep * width) channels, and never below 1. */
  minKeep: number;
  /** Kept counts are multiples of this where the width allows (1: any count; 'auto': see roundingStep). */
  roundTo: RoundTo;
  /** Groups held at full width, by name. */
  keep: readonly string[];
}

export const NO_WIDTH_CONSTRAINTS: WidthConstraints = { minKeep: 0, roundTo: 1, keep: [] };

/**
 * `--round-to auto`: groups at least this wide keep multiples of AUTO_ROUNDING_STEP, narrower ones
 * any count. At 64 the step is 8 channels, 12.5% of the layer, and the group still has 8 widths
 * to choose from; a 48-wide layer rounded to 8 would have 6 steps of 17%, and the small models'
 * 12- to 48-channel layers would lose most of their choices, for no speed (below).
 */
export const AUTO_ROUNDING_MIN_WIDTH = 64;
/**
 * Why 8: XNNPACK's f32 kernels on wasm SIMD compute output channels in tiles of 8 (its GEMM
 * micro-kernels are MRx8 and pack the weights to a multiple of 8 channels), so a 61-channel 1x1
 * conv costs what a 64-channel one does: the channels between multiples of 8 are MACs saved on
 * paper only. Measured (bench/wasm-channel-steps.ts, docs/latency.md): a 1x1 conv's time is flat
 * from 41 to 48 output channels and from 49 to 56, and uniformly pruned MobileNetV2s at 50% of
 * the MACs came closer to the MACs ratio in latency with multiples of 8 than with any width.
 */
export const AUTO_ROUNDING_STEP = 8;

/** The step between a group's allowed kept counts under `roundTo` (1: any count). */
export function roundingStep(width: number, roundTo: RoundTo): number {
  if (roundTo === 'auto') return width >= AUTO_ROUNDING_MIN_WIDTH ? AUTO_ROUNDING_STEP : 1;
  return Math.max(1, Math.floor(roundTo));
}

/** `--round-to` as a user writes it: `auto` or a whole number from 1; undefined for anything else. */
export function parseRoundTo(text: string): RoundTo | undefined {
  const t = text.trim();
  if (t === 'auto') return 'auto';
  if (!/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/**
 * The fewest channels a group of `width` may keep. Rounding up to a multiple of the group's
 * rounding step applies where the width allows one at or above the minimum; a group narrower than
 * the step keeps the minimum, and one whose next multiple would exceed its width keeps its full
 * width.
 */
export function lowestKeptCount(name: string, width: number, constraints: WidthConstraints): number {
  if (constraints.keep.includes(name)) return width;
  const minimum = Math.min(width, Math.max(1, Math.ceil(constraints.minKeep * width - 1e-9)));
  const step = roundingStep(width, constraints.roundTo);
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
