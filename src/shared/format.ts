/**
 * How counts (MACs, params) and fractions read everywhere: the terminal, the extension's
 * notifications and the webviews. Pure functions, no runtime dependencies, so the CLI, the host
 * and the webview bundle all import this one file.
 */

const COUNT_UNITS: ReadonlyArray<[number, string, number]> = [
  [1e9, 'G', 2],
  [1e6, 'M', 2],
  [1e3, 'K', 1],
];

/** 1.36G, 12.50M, 646.9K, 512; '–' for a value that is not a finite number. */
export function formatCount(value: number): string {
  if (!Number.isFinite(value)) return '–';
  for (const [scale, unit, decimals] of COUNT_UNITS) if (Math.abs(value) >= scale) return `${(value / scale).toFixed(decimals)}${unit}`;
  return String(Math.round(value));
}

/** 0.4937 -> '49.4%'; '–' for a value that is not a finite number. */
export function formatPercent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(100 * fraction).toFixed(1)}%` : '–';
}
