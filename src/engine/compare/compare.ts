/**
 * Comparing PaS with the baselines at equal training: which runs, with which epochs, and what the
 * comparison (compare.json) holds. Used by `pas compare` and by the extension's "Compare with
 * baselines"; how a run is executed (in-process for the CLI, a worker process for the extension)
 * is the caller's, passed in as `runOne`. No vscode import.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { PruneMethod, SearchReport } from '../../shared/workerProtocol';
import { writeFileAtomic } from '../io/atomic';
import { methodSearches, PRUNE_METHOD_NAMES } from '../search/methodKinds';

/** The file a comparison writes into its folder. */
export const COMPARE_FILE = 'compare.json';

/**
 * Weight-training epochs after the start model, per method: the same total for every method. A
 * method without a search phase fine-tunes for the search + fine-tune epochs (the paper's "same
 * training budget"), so no method trains its weights longer than another.
 */
export function compareEpochs(method: PruneMethod, searchEpochs: number, finetuneEpochs: number): { searchEpochs: number; finetuneEpochs: number } {
  return methodSearches(method) ? { searchEpochs, finetuneEpochs } : { searchEpochs: 0, finetuneEpochs: searchEpochs + finetuneEpochs };
}

/** One method's result in compare.json. */
export interface CompareRow {
  method: PruneMethod;
  outputDir: string;
  /** Test accuracy of the deployed model (top-1 agreement with the original model when the data had no labels: see `labelled`). */
  accuracy: number;
  macs: number;
  macsFraction: number;
  params: number;
  /** Measured latency of the deployed model (batch 1, median; the job's latencyAfter); null when not measured. */
  latencyMs: number | null;
  epochs: { search: number; finetune: number };
  widths: Array<{ name: string; originalWidth: number; width: number }>;
  searchEndMacsFraction?: number;
  /** The deployed model against the original one (report.json's `fidelity`), when the run measured it. */
  fidelity?: { metric: 'top1-agreement' | 'psnr-db'; value: number | null };
  /** False when the data had no labels (accuracy is then agreement with the original model). */
  labelled?: boolean;
  wallSeconds: number;
}

export interface CompareReport {
  model: string;
  data: string;
  targetFraction: number;
  seed: number;
  accuracyBefore: number;
  macsBefore: number;
  paramsBefore: number;
  /** Measured latency of the unpruned model's deployed form (batch 1, median), when the first run measured it. */
  latencyBefore?: number;
  rows: CompareRow[];
}

export function compareRowOf(method: PruneMethod, report: SearchReport, outputDir: string): CompareRow {
  return {
    method,
    outputDir,
    accuracy: report.accuracyAfter,
    macs: report.macsAfter,
    macsFraction: report.macsAfter / report.macsBefore,
    params: report.paramsAfter,
    latencyMs: report.latencyAfter ?? null,
    epochs: { search: report.epochs.search, finetune: report.epochs.finetune },
    widths: report.layers.map((l) => ({ name: l.name, originalWidth: l.originalWidth, width: l.searchedWidth })),
    ...(report.searchEndMacsFraction !== undefined ? { searchEndMacsFraction: report.searchEndMacsFraction } : {}),
    ...(report.fidelity !== undefined ? { fidelity: report.fidelity } : {}),
    ...(report.labelled !== undefined ? { labelled: report.labelled } : {}),
    wallSeconds: report.wallSeconds,
  };
}

/** One finished run of a comparison. */
export interface CompareResult {
  method: PruneMethod;
  report: SearchReport;
  outputDir: string;
}

/** compare.json's content from the finished runs, in their order; the first run gives the shared fields. */
export function compareReportOf(results: readonly CompareResult[]): CompareReport {
  if (results.length === 0) throw new Error('a comparison needs at least one finished run');
  const first = results[0].report;
  return {
    model: first.modelPath,
    data: first.dataSpec,
    targetFraction: first.targetFraction,
    seed: first.seed,
    accuracyBefore: first.accuracyBefore,
    macsBefore: first.macsBefore,
    paramsBefore: first.paramsBefore,
    ...(first.latencyBefore !== undefined ? { latencyBefore: first.latencyBefore } : {}),
    rows: results.map(({ method, report, outputDir }) => compareRowOf(method, report, outputDir)),
  };
}

/** One run a comparison still has to do. */
export interface CompareStep {
  method: PruneMethod;
  searchEpochs: number;
  finetuneEpochs: number;
  /** Where this run writes: `<compare folder>/<method>`. */
  outputDir: string;
}

/**
 * The runs of a comparison into `compareDir`, one per method of the method table, in table order,
 * each with the epochs `compareEpochs` gives. `searchEpochs`/`finetuneEpochs` are PaS's.
 */
export function comparePlan(compareDir: string, searchEpochs: number, finetuneEpochs: number, methods: readonly PruneMethod[] = PRUNE_METHOD_NAMES): CompareStep[] {
  return methods.map((method) => ({ method, ...compareEpochs(method, searchEpochs, finetuneEpochs), outputDir: path.join(compareDir, method) }));
}

/** How one run ended, as the comparison needs to know it. */
export type StepOutcome = { kind: 'done'; report: SearchReport; outputDir?: string } | { kind: 'cancelled' } | { kind: 'failed'; reason: string };

export type CompareOutcome =
  | { kind: 'done'; compare: CompareReport; file: string }
  | { kind: 'cancelled'; method: PruneMethod; finished: CompareResult[] }
  | { kind: 'failed'; method: PruneMethod; reason: string; finished: CompareResult[] };

export interface CompareHooks {
  /** Runs one step to its end. */
  runOne(step: CompareStep, index: number): Promise<StepOutcome>;
  /** Checked before each step: true stops the comparison without starting the next run. */
  cancelled?(): boolean;
  /** A step is about to start. */
  onStepStart?(step: CompareStep, index: number): void;
  /** A step ended (whatever the outcome). */
  onStepEnd?(step: CompareStep, index: number, outcome: StepOutcome): void;
}

/**
 * Runs the steps one after another, then writes `<compareDir>/compare.json` atomically with the
 * `earlier` results (runs that already exist, e.g. the finished PaS run the extension compares
 * from) followed by the new ones. A cancelled or failed step stops the comparison: nothing after
 * it starts and no compare.json is written (the finished runs' folders stay).
 */
export async function runComparison(compareDir: string, steps: readonly CompareStep[], hooks: CompareHooks, earlier: readonly CompareResult[] = []): Promise<CompareOutcome> {
  const finished: CompareResult[] = [...earlier];
  for (const [index, step] of steps.entries()) {
    if (hooks.cancelled?.()) return { kind: 'cancelled', method: step.method, finished };
    hooks.onStepStart?.(step, index);
    const outcome = await hooks.runOne(step, index);
    hooks.onStepEnd?.(step, index, outcome);
    if (outcome.kind === 'cancelled') return { kind: 'cancelled', method: step.method, finished };
    if (outcome.kind === 'failed') return { kind: 'failed', method: step.method, reason: outcome.reason, finished };
    finished.push({ method: step.method, report: outcome.report, outputDir: outcome.outputDir ?? step.outputDir });
  }
  const compare = compareReportOf(finished);
  const file = path.join(compareDir, COMPARE_FILE);
  // the runs create their own folders inside it; a comparison of earlier runs only may not have one yet
  await fsp.mkdir(compareDir, { recursive: true });
  await writeFileAtomic(file, JSON.stringify(compare, null, 2) + '\n');
  return { kind: 'done', compare, file };
}
