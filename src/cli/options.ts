import { SEARCH_LATENT_INIT } from '../engine/search/latentInit';
import { InvalidArgumentError } from 'commander';
import type { BackendChoice } from '../shared/workerProtocol';
import type { BuiltinOptions } from '../engine/zoo/builtins';
import { parseWorkers, type WorkersChoice } from '../engine/train/parallel/workerCount';
import { parseRoundTo, type RoundTo } from '../engine/budgetPreview';

export function parseShape(value: string): [number, number, number] {
  const parts = value.split(',').map((p) => Number(p.trim()));
  if (parts.length !== 3 || parts.some((p) => !Number.isInteger(p) || p < 1 || p > 4096)) {
    throw new InvalidArgumentError(`expected H,W,C with three positive integers, got '${value}'`);
  }
  return parts as [number, number, number];
}

/** `--workers auto|N`: training threads sharing each batch (data parallelism on wasm). */
export function parseWorkersOption(value: string): WorkersChoice {
  const parsed = parseWorkers(value);
  if (parsed === undefined) throw new InvalidArgumentError(`expected auto or a thread count from 1 to 999, got '${value}'`);
  return parsed;
}

/** `--round-to auto|N`: a whole number from 1 (1: any width), or auto (a step per layer from its width). */
export function parseRoundToOption(value: string): RoundTo {
  const parsed = parseRoundTo(value);
  if (parsed === undefined) throw new InvalidArgumentError(`expected auto or a whole number from 1 (1: any width), got '${value}'`);
  return parsed;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer >= 0, got '${value}'`);
  return n;
}

export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return n;
}

/** A fraction strictly between 0 and 1 (the MACs target). */
export function parseFraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n >= 1) throw new InvalidArgumentError(`expected a fraction strictly between 0 and 1, got '${value}'`);
  return n;
}

/** A fraction in [0, 1] (--min-keep). */
export function parseUnitInterval(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`expected a fraction between 0 and 1, got '${value}'`);
  return n;
}

/** The spread of PaS's latent importance prior (--latent-prior): every channel must start kept. */
export function parseLatentPrior(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n >= 2 * (SEARCH_LATENT_INIT - 0.5)) {
    throw new InvalidArgumentError(`expected a number >= 0 and < ${2 * (SEARCH_LATENT_INIT - 0.5)} (the latents start at ${SEARCH_LATENT_INIT}, and every channel must start above the 0.5 threshold), got '${value}'`);
  }
  return n;
}

/** A comma-separated list of names (--keep); empty entries are refused. */
export function parseNameList(value: string): string[] {
  const names = value.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new InvalidArgumentError(`expected NAME[,NAME...], got '${value}'`);
  return names;
}

export const BACKEND_CHOICES: BackendChoice[] = ['auto', 'node-gpu', 'node', 'wasm', 'cpu'];

export interface ModelOptions {
  input?: [number, number, number];
  classes?: number;
  widthMultiplier?: number;
}

export function builtinOptionsFrom(options: ModelOptions, seed?: number): BuiltinOptions {
  return { inputShape: options.input, numClasses: options.classes, widthMultiplier: options.widthMultiplier, seed };
}
