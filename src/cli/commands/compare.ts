import * as fs from 'fs';
import * as path from 'path';
import type { BackendName, PruneMethod, SearchReport } from '../../shared/workerProtocol';
import { PasInputError } from '../../engine/errors';
import { writeFileAtomic } from '../../engine/io';
import { defaultOutputDir } from '../../engine/outputPaths';
import { methodSearches, PRUNE_METHOD_NAMES } from '../../engine/search/methods';
import { isBuiltinSpec } from '../../engine/zoo/builtins';
import { formatTable, Output } from '../output';
import { EXIT_CANCELLED, runSearch, SearchCliOptions } from './search';

/** Weight-training epochs after the start model, per method: the same total for every method. */
export function compareEpochs(method: PruneMethod, searchEpochs: number, finetuneEpochs: number): { searchEpochs: number; finetuneEpochs: number } {
  return methodSearches(method) ? { searchEpochs, finetuneEpochs } : { searchEpochs: 0, finetuneEpochs: searchEpochs + finetuneEpochs };
}

/** One method's result in compare.json. */
export interface CompareRow {
  method: PruneMethod;
  outputDir: string;
  accuracy: number;
  macs: number;
  macsFraction: number;
  params: number;
  /** Measured latency of the deployed model (batch 1, median; the job's latencyAfter); null when not measured. */
  latencyMs: number | null;
  epochs: { search: number; finetune: number };
  widths: Array<{ name: string; originalWidth: number; width: number }>;
  searchEndMacsFraction?: number;
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
    wallSeconds: report.wallSeconds,
  };
}

/**
 * `pas compare`: PaS and every baseline of the method table at the same MACs target, on the same
 * data and seed, with the same weight-training epochs (a baseline fine-tunes for the search +
 * fine-tune epochs). Each method runs as a normal search into OUT/<method>/; OUT/compare.json and
 * a table summarize them. A builtin is pretrained by each run from the same seed.
 */
export async function runCompare(modelSpec: string, options: SearchCliOptions, backend: BackendName, output: Output): Promise<number> {
  const modelFile = isBuiltinSpec(modelSpec) ? undefined : path.resolve(modelSpec.endsWith('.json') ? modelSpec : path.join(modelSpec, 'model.json'));
  const outDir = path.resolve(options.out ?? defaultOutputDir(modelFile, modelSpec, `pas-compare-${Math.round(options.targetMacs * 100)}`));
  if (fs.existsSync(outDir) && fs.readdirSync(outDir).length > 0) {
    throw new PasInputError('output folder already exists and is not empty; pass another --out', outDir);
  }
  const reports: Array<{ method: PruneMethod; report: SearchReport; dir: string }> = [];
  for (const method of PRUNE_METHOD_NAMES) {
    const dir = path.join(outDir, method);
    output.note(`== compare: ${method} (${reports.length + 1}/${PRUNE_METHOD_NAMES.length})`);
    const code = await runSearch(modelSpec, { ...options, ...compareEpochs(method, options.searchEpochs, options.finetuneEpochs), method, out: dir }, backend, output);
    if (code !== 0) return code === EXIT_CANCELLED ? EXIT_CANCELLED : code;
    reports.push({ method, report: JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8')) as SearchReport, dir });
  }
  const first = reports[0].report;
  const compare: CompareReport = {
    model: first.modelPath,
    data: first.dataSpec,
    targetFraction: first.targetFraction,
    seed: first.seed,
    accuracyBefore: first.accuracyBefore,
    macsBefore: first.macsBefore,
    paramsBefore: first.paramsBefore,
    rows: reports.map(({ method, report, dir }) => compareRowOf(method, report, dir)),
  };
  await writeFileAtomic(path.join(outDir, 'compare.json'), JSON.stringify(compare, null, 2) + '\n');
  output.text();
  output.text(formatCompareTable(compare));
  output.text();
  output.text(`compare.json and one folder per method: ${outDir}`);
  return 0;
}

/** The side-by-side table: one row per method, then the widths per layer. */
export function formatCompareTable(compare: CompareReport): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const summary = formatTable(
    ['method', 'accuracy', 'MACs', 'MACs %', 'params', 'latency ms', 'epochs (search+finetune)'],
    [
      ['unpruned', pct(compare.accuracyBefore), compare.macsBefore, '100.00%', compare.paramsBefore, 'n/a', '-'],
      ...compare.rows.map((r) => [r.method, pct(r.accuracy), r.macs, pct(r.macsFraction), r.params, r.latencyMs === null ? 'n/a' : r.latencyMs.toFixed(2), `${r.epochs.search}+${r.epochs.finetune}`]),
    ],
  );
  const widths = formatTable(
    ['layer', 'width', ...compare.rows.map((r) => r.method)],
    compare.rows[0].widths.map((w, i) => [w.name, w.originalWidth, ...compare.rows.map((r) => r.widths[i].width)]),
  );
  return `${summary}\n\n${widths}`;
}
