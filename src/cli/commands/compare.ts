import * as fs from 'fs';
import * as path from 'path';
import type { BackendName, SearchReport } from '../../shared/workerProtocol';
import { comparePlan, runComparison, type CompareReport } from '../../engine/compare/compare';
import { PasInputError } from '../../engine/errors';
import { defaultOutputDir } from '../../engine/outputPaths';
import { isBuiltinSpec } from '../../engine/zoo/builtins';
import { formatTable, Output } from '../output';
import { EXIT_CANCELLED, runSearch, SearchCliOptions } from './search';

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
  const steps = comparePlan(outDir, options.searchEpochs, options.finetuneEpochs);
  let exitCode = 0;
  const outcome = await runComparison(outDir, steps, {
    onStepStart: (step, index) => output.note(`== compare: ${step.method} (${index + 1}/${steps.length})`),
    runOne: async (step) => {
      const code = await runSearch(modelSpec, { ...options, searchEpochs: step.searchEpochs, finetuneEpochs: step.finetuneEpochs, method: step.method, out: step.outputDir }, backend, output);
      if (code === EXIT_CANCELLED) return { kind: 'cancelled' };
      if (code !== 0) {
        exitCode = code;
        return { kind: 'failed', reason: `exit code ${code}` };
      }
      return { kind: 'done', report: JSON.parse(fs.readFileSync(path.join(step.outputDir, 'report.json'), 'utf8')) as SearchReport };
    },
  });
  if (outcome.kind === 'cancelled') return EXIT_CANCELLED;
  if (outcome.kind === 'failed') return exitCode;
  const compare = outcome.compare;
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
      ['unpruned', pct(compare.accuracyBefore), compare.macsBefore, '100.00%', compare.paramsBefore, compare.latencyBefore === undefined ? 'n/a' : compare.latencyBefore.toFixed(2), '-'],
      ...compare.rows.map((r) => [r.method, pct(r.accuracy), r.macs, pct(r.macsFraction), r.params, r.latencyMs === null ? 'n/a' : r.latencyMs.toFixed(2), `${r.epochs.search}+${r.epochs.finetune}`]),
    ],
  );
  const widths = formatTable(
    ['layer', 'width', ...compare.rows.map((r) => r.method)],
    compare.rows[0].widths.map((w, i) => [w.name, w.originalWidth, ...compare.rows.map((r) => r.widths[i].width)]),
  );
  return `${summary}\n\n${widths}`;
}
