/**
 * Builds the argument vectors of the `pas` CLI from the user's choices.
 *
 * Arguments are passed to `child_process.spawn` as an array (no shell), so paths with spaces or
 * quotes need no escaping; `formatCommandLine` only renders them for the log, quoted so a user can
 * paste the line into a POSIX shell.
 */
import { CLI_DEFAULTS, PREPROCESSING_OPTIONS, type DataChoice, type PreprocessingPreset, type RunSetup } from '../../shared/runSetup';
import type { BackendChoice, PruneMethod } from '../../shared/workerProtocol';
import type { RoundTo } from '../../engine/budgetPreview';
import { methodSearches } from '../../engine/search/methodKinds';

export type { DataChoice };

export interface SearchOptions {
  /** A model.json path or `builtin:NAME`. */
  model: string;
  data: DataChoice;
  targetFraction: number;
  searchEpochs: number;
  finetuneEpochs: number;
  pretrainEpochs?: number;
  method?: PruneMethod;
  backend?: BackendChoice;
  /** `--workers`: 'auto' or a thread count (the `pas.workers` setting). */
  workers?: 'auto' | number;
  seed?: number;
  outDir?: string;
  resume?: string;
  batchSize?: number;
  /** Width constraints (`--min-keep`, `--round-to`, `--keep`). */
  minKeep?: number;
  /** 'auto' or a whole number from 1 (1: any width). */
  roundTo?: RoundTo;
  keep?: readonly string[];
  preprocessing?: PreprocessingPreset;
  distill?: boolean;
}

/** The search a setup form describes, on `model`, writing to `outDir` with `backend`. */
export function searchOptionsFromSetup(setup: RunSetup, model: string, outDir: string, backend: BackendChoice): SearchOptions {
  return {
    model,
    data: setup.data,
    targetFraction: setup.targetFraction,
    searchEpochs: setup.searchEpochs,
    finetuneEpochs: setup.finetuneEpochs,
    pretrainEpochs: setup.pretrainEpochs ?? undefined,
    backend,
    outDir,
    batchSize: setup.batchSize,
    minKeep: setup.minKeep,
    roundTo: setup.roundTo,
    keep: setup.keep,
    preprocessing: setup.preprocessing,
    distill: setup.distill,
  };
}

/** `0.1` and `1e-7` as the CLI parses them back (no exponent, no float noise such as 0.30000000000000004). */
function formatNumberArg(value: number): string {
  return String(Number(value.toPrecision(12)));
}

/** The `--data` value for a data choice. */
export function dataSpec(data: DataChoice): string {
  switch (data.kind) {
    case 'sample':
      return 'sample';
    case 'idx':
      return `idx:${data.dir}`;
    case 'folder':
      return `folder:${data.dir}`;
  }
}

/** Parses a `pas.data` setting value (`sample`, `idx:DIR`, `folder:DIR`); undefined when malformed. */
export function parseDataSpec(spec: string): DataChoice | undefined {
  const s = spec.trim();
  if (s === 'sample') return { kind: 'sample' };
  const m = /^(idx|folder):(.+)$/.exec(s);
  if (!m) return undefined;
  return m[1] === 'idx' ? { kind: 'idx', dir: m[2] } : { kind: 'folder', dir: m[2] };
}

function checkInt(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
}

/** Arguments after the CLI script for `pas search ... --json`. Throws RangeError on invalid numbers. */
export function buildSearchArgs(o: SearchOptions): string[] {
  if (!(o.targetFraction > 0 && o.targetFraction < 1)) throw new RangeError(`target MACs fraction must be in (0, 1), got ${o.targetFraction}`);
  // a baseline selects its channels once and has no search phase (pas compare gives it 0 search epochs)
  checkInt('search epochs', o.searchEpochs, o.method && !methodSearches(o.method) ? 0 : 1);
  checkInt('finetune epochs', o.finetuneEpochs, 0);
  const args = [
    'search',
    o.model,
    '--data',
    dataSpec(o.data),
    '--target-macs',
    String(o.targetFraction),
    '--search-epochs',
    String(o.searchEpochs),
    '--finetune-epochs',
    String(o.finetuneEpochs),
  ];
  if (o.pretrainEpochs !== undefined) {
    checkInt('pretrain epochs', o.pretrainEpochs, 0);
    args.push('--pretrain-epochs', String(o.pretrainEpochs));
  }
  if (o.method) args.push('--method', o.method);
  if (o.backend) args.push('--backend', o.backend);
  if (o.workers !== undefined) {
    if (o.workers !== 'auto') checkInt('workers', o.workers, 1);
    args.push('--workers', String(o.workers));
  }
  if (o.seed !== undefined) {
    checkInt('seed', o.seed, 0);
    args.push('--seed', String(o.seed));
  }
  if (o.outDir) args.push('--out', o.outDir);
  if (o.resume) args.push('--resume', o.resume);
  // Options at the CLI's default are left out: the command line stays what a user would type.
  if (o.batchSize !== undefined && o.batchSize !== CLI_DEFAULTS.batchSize) {
    checkInt('batch size', o.batchSize, 1);
    args.push('--batch-size', String(o.batchSize));
  }
  if (o.minKeep !== undefined && o.minKeep !== CLI_DEFAULTS.minKeep) {
    if (!(o.minKeep >= 0 && o.minKeep < 1)) throw new RangeError(`min-keep must be in [0, 1), got ${o.minKeep}`);
    args.push('--min-keep', formatNumberArg(o.minKeep));
  }
  if (o.roundTo !== undefined && o.roundTo !== CLI_DEFAULTS.roundTo) {
    if (o.roundTo !== 'auto') checkInt('round-to', o.roundTo, 1);
    args.push('--round-to', String(o.roundTo));
  }
  if (o.keep && o.keep.length > 0) {
    if (o.keep.some((name) => name === '' || name.includes(','))) throw new RangeError(`group names for --keep cannot be empty or contain commas: ${o.keep.join(', ')}`);
    args.push('--keep', o.keep.join(','));
  }
  const preprocessing = PREPROCESSING_OPTIONS.find((p) => p.preset === o.preprocessing);
  if (o.preprocessing !== undefined && !preprocessing) throw new RangeError(`unknown preprocessing preset ${o.preprocessing}`);
  if (preprocessing && (preprocessing.inputRange !== '0,1' || preprocessing.normalize)) {
    args.push('--input-range', preprocessing.inputRange);
    if (preprocessing.normalize) args.push('--normalize', [...preprocessing.normalize.mean, ...preprocessing.normalize.std].map(formatNumberArg).join(','));
  }
  if (o.distill) args.push('--distill');
  args.push('--json');
  return args;
}

export function buildInspectArgs(model: string, options: { latency?: boolean } = {}): string[] {
  return ['inspect', model, ...(options.latency ? ['--latency'] : []), '--json'];
}

export function buildReparamArgs(model: string, outDir: string): string[] {
  return ['reparam', model, '--out', outDir, '--check', '--json'];
}

/** Quotes one argument for display in a POSIX shell. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_\-.,:/=@+%]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The command line as a user could paste it into a shell (log only; spawn gets the array). */
export function formatCommandLine(executable: string, args: readonly string[]): string {
  return [executable, ...args].map(shellQuote).join(' ');
}

/** Validates the text of the MACs-target input box; returns an error message or undefined. */
export function validateFractionInput(text: string): string | undefined {
  const t = text.trim();
  if (!/^\d*\.?\d+$/.test(t)) return 'Enter a number between 0.05 and 0.95, e.g. 0.5 keeps half of the MACs.';
  const v = Number(t);
  if (!(v >= 0.05 && v <= 0.95)) return `The fraction of MACs to keep must be between 0.05 and 0.95 (got ${t}).`;
  return undefined;
}

/** Validates an epoch count input; returns an error message or undefined. */
export function validateEpochsInput(text: string, min: number, max: number): string | undefined {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return `Enter a whole number between ${min} and ${max}.`;
  const v = Number(t);
  if (v < min || v > max) return `Must be between ${min} and ${max}.`;
  return undefined;
}
