/**
 * The run-setup form's state (what "Prune with PaS" asks before a search), its defaults and its
 * validation. Pure: the extension host validates what the webview posts with the same function
 * the webview uses to mark invalid fields, and the unit tests import it in Node.
 */

import { parseRoundTo, type RoundTo } from '../engine/budgetPreview';

/** Training data: the bundled sample, an IDX folder or an image folder (`--data`). */
export type DataChoice =
  | { kind: 'sample' }
  | { kind: 'idx'; dir: string }
  | { kind: 'folder'; dir: string };

/** How images are scaled before they reach the model (`--input-range` / `--normalize`). */
export type PreprocessingPreset = 'range-0-1' | 'range-minus1-1' | 'range-0-255' | 'imagenet';

export interface PreprocessingOption {
  preset: PreprocessingPreset;
  label: string;
  /** `--input-range` value. */
  inputRange: '0,1' | '-1,1' | '0,255';
  /** `--normalize MEAN,STD`: the means, then the standard deviations (one each, or one per channel). */
  normalize?: { mean: number[]; std: number[] };
}

export const PREPROCESSING_OPTIONS: readonly PreprocessingOption[] = [
  { preset: 'range-0-1', label: 'Pixels in 0..1', inputRange: '0,1' },
  { preset: 'range-minus1-1', label: 'Pixels in -1..1 (Keras MobileNet family)', inputRange: '-1,1' },
  { preset: 'range-0-255', label: 'Pixels in 0..255', inputRange: '0,255' },
  { preset: 'imagenet', label: 'ImageNet mean/std (on 0..1 pixels)', inputRange: '0,1', normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } },
];

/** What the CLI does without preprocessing options: pixels in 0..1. */
export const DEFAULT_PREPROCESSING: PreprocessingPreset = 'range-0-1';

export interface RunSetup {
  data: DataChoice;
  /** Fraction of the deployed model's MACs to keep, in (0, 1). */
  targetFraction: number;
  /** null: the CLI's default (6 for builtins, 0 for model files). */
  pretrainEpochs: number | null;
  searchEpochs: number;
  finetuneEpochs: number;
  batchSize: number;
  /** No group below ceil(minKeep * width) channels (and never below 1). */
  minKeep: number;
  /** Kept counts are multiples of this where the width allows (1: any; 'auto': 8 in groups of 64+ channels, any count below). */
  roundTo: RoundTo;
  /** Prunable groups held at full width, by name. */
  keep: string[];
  preprocessing: PreprocessingPreset;
  /** Learn from the original model's outputs (no labels needed). */
  distill: boolean;
}

/** The CLI's own defaults: the args builder leaves an option out when it has this value. */
export const CLI_DEFAULTS: { batchSize: number; minKeep: number; roundTo: RoundTo } = { batchSize: 64, minKeep: 0.1, roundTo: 'auto' };

export const LIMITS = {
  targetFraction: { min: 0.01, max: 0.99 },
  epochs: { max: 1000 },
  batchSize: { min: 1, max: 4096 },
  roundTo: { min: 1, max: 256 },
} as const;

/** The `pas.*` settings the form starts from (plain values, read by the host). */
export interface SetupSettings {
  data?: DataChoice;
  targetFraction?: number;
  pretrainEpochs?: number | null;
  searchEpochs?: number;
  finetuneEpochs?: number;
  batchSize?: number;
  minKeep?: number;
  roundTo?: RoundTo;
  preprocessing?: PreprocessingPreset;
  distill?: boolean;
}

/**
 * The `pas.roundTo` setting: 'auto' or a whole number from 1 (a hand-edited "8" is read as 8);
 * anything else is undefined, so the form falls back to the CLI's default.
 */
export function roundToSetting(value: unknown): RoundTo | undefined {
  return typeof value === 'number' || typeof value === 'string' ? parseRoundTo(String(value)) : undefined;
}

/**
 * The form's first values: the last run on this model, else the settings, else the CLI's
 * defaults. A remembered value that no longer validates (a setting changed its range) is dropped.
 */
export function defaultRunSetup(settings: SetupSettings, last?: Partial<RunSetup>): RunSetup {
  const base: RunSetup = {
    data: settings.data ?? { kind: 'sample' },
    targetFraction: settings.targetFraction ?? 0.5,
    pretrainEpochs: settings.pretrainEpochs ?? null,
    searchEpochs: settings.searchEpochs ?? 10,
    finetuneEpochs: settings.finetuneEpochs ?? 10,
    batchSize: settings.batchSize ?? CLI_DEFAULTS.batchSize,
    minKeep: settings.minKeep ?? CLI_DEFAULTS.minKeep,
    roundTo: settings.roundTo ?? CLI_DEFAULTS.roundTo,
    keep: [],
    preprocessing: settings.preprocessing ?? DEFAULT_PREPROCESSING,
    distill: settings.distill ?? false,
  };
  if (!last) return base;
  const merged = { ...base, ...last };
  const checked = validateRunSetup(merged);
  if (checked.ok) return checked.setup;
  const kept: Record<string, unknown> = { ...merged };
  for (const field of Object.keys(checked.errors)) kept[field] = (base as unknown as Record<string, unknown>)[field];
  const again = validateRunSetup(kept);
  return again.ok ? again.setup : base;
}

export type SetupField = keyof RunSetup;
export type SetupValidation = { ok: true; setup: RunSetup } | { ok: false; errors: Partial<Record<SetupField, string>> };

const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function checkData(v: unknown): DataChoice | string {
  if (typeof v !== 'object' || v === null) return 'Choose the training data.';
  const d = v as Record<string, unknown>;
  if (d.kind === 'sample' && Object.keys(d).length === 1) return { kind: 'sample' };
  if ((d.kind === 'idx' || d.kind === 'folder') && Object.keys(d).length === 2) {
    if (typeof d.dir !== 'string' || d.dir.trim() === '') return 'Choose a folder.';
    if (/[\0\n\r]/.test(d.dir)) return 'The folder path has control characters.';
    return { kind: d.kind, dir: d.dir };
  }
  return 'Unknown data kind.';
}

/**
 * Validates a form state (also one posted by a webview: untrusted). `groupNames`, when given,
 * are the model's prunable groups: `keep` may only name them, and not all of them.
 */
export function validateRunSetup(raw: unknown, groupNames?: readonly string[]): SetupValidation {
  const errors: Partial<Record<SetupField, string>> = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, errors: { data: 'not a form state' } };
  const s = raw as Record<string, unknown>;
  const known: SetupField[] = ['data', 'targetFraction', 'pretrainEpochs', 'searchEpochs', 'finetuneEpochs', 'batchSize', 'minKeep', 'roundTo', 'keep', 'preprocessing', 'distill'];
  const unknown = Object.keys(s).filter((k) => !known.includes(k as SetupField));
  if (unknown.length > 0) return { ok: false, errors: { data: `unknown fields: ${unknown.join(', ')}` } };

  const data = checkData(s.data);
  if (typeof data === 'string') errors.data = data;
  const { min: fMin, max: fMax } = LIMITS.targetFraction;
  if (!(typeof s.targetFraction === 'number' && s.targetFraction >= fMin && s.targetFraction <= fMax)) errors.targetFraction = `A fraction between ${fMin} and ${fMax}, e.g. 0.5 keeps half of the MACs.`;
  if (!(s.pretrainEpochs === null || isInt(s.pretrainEpochs, 0, LIMITS.epochs.max))) errors.pretrainEpochs = `A whole number from 0 to ${LIMITS.epochs.max}, or empty for the default.`;
  if (!isInt(s.searchEpochs, 1, LIMITS.epochs.max)) errors.searchEpochs = `A whole number from 1 to ${LIMITS.epochs.max}.`;
  if (!isInt(s.finetuneEpochs, 0, LIMITS.epochs.max)) errors.finetuneEpochs = `A whole number from 0 to ${LIMITS.epochs.max}.`;
  if (!isInt(s.batchSize, LIMITS.batchSize.min, LIMITS.batchSize.max)) errors.batchSize = `A whole number from ${LIMITS.batchSize.min} to ${LIMITS.batchSize.max}.`;
  if (!(typeof s.minKeep === 'number' && s.minKeep >= 0 && s.minKeep < 1)) errors.minKeep = 'A fraction from 0 (down to one channel) to below 1.';
  if (!(s.roundTo === 'auto' || isInt(s.roundTo, LIMITS.roundTo.min, LIMITS.roundTo.max))) errors.roundTo = `auto (multiples of 8 in layers of 64+ channels), or a whole number from 1 (any width) to ${LIMITS.roundTo.max}.`;
  if (!Array.isArray(s.keep) || !s.keep.every((k) => typeof k === 'string' && k !== '' && !k.includes(','))) errors.keep = 'A list of group names.';
  else if (groupNames && s.keep.some((k) => !groupNames.includes(k as string))) errors.keep = `Not a prunable group: ${s.keep.filter((k) => !groupNames.includes(k as string)).join(', ')}.`;
  else if (groupNames && groupNames.length > 0 && new Set(s.keep).size >= groupNames.length) errors.keep = 'Leave at least one group to prune.';
  if (!PREPROCESSING_OPTIONS.some((o) => o.preset === s.preprocessing)) errors.preprocessing = 'Choose a preprocessing preset.';
  if (typeof s.distill !== 'boolean') errors.distill = 'On or off.';

  if (Object.keys(errors).length > 0) return { ok: false, errors };
  return {
    ok: true,
    setup: {
      data: data as DataChoice,
      targetFraction: s.targetFraction as number,
      pretrainEpochs: s.pretrainEpochs as number | null,
      searchEpochs: s.searchEpochs as number,
      finetuneEpochs: s.finetuneEpochs as number,
      batchSize: s.batchSize as number,
      minKeep: s.minKeep as number,
      roundTo: s.roundTo as RoundTo,
      keep: [...new Set(s.keep as string[])],
      preprocessing: s.preprocessing as PreprocessingPreset,
      distill: s.distill as boolean,
    },
  };
}
