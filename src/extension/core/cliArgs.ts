/**
 * Builds the argument vectors of the `pas` CLI from the user's choices.
 *
 * Arguments are passed to `child_process.spawn` as an array (no shell), so paths with spaces or
 * quotes need no escaping; `formatCommandLine` only renders them for the log, quoted so a user can
 * paste the line into a POSIX shell.
 */
import type { BackendChoice, PruneMethod } from '../../shared/workerProtocol';

export type DataChoice =
  | { kind: 'sample' }
  | { kind: 'idx'; dir: string }
  | { kind: 'folder'; dir: string };

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
  checkInt('search epochs', o.searchEpochs, 1);
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
