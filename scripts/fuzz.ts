/**
 * `npm run fuzz`: mutates a valid model folder and valid IDX files thousands of times and checks
 * that PaS refuses every broken input cleanly (see test/fuzz/fuzzing.ts). Writes the counts to
 * bench/results/fuzz.json and exits 1 when any case crashed, hung or wrote into its input.
 *
 * Options: --seed N (default 1), --model-cases N (1600), --idx-cases N (600), --cli-cases N (100),
 * --topology-cases N (600: mutated architecture-family graphs, test/fuzz/topologyFuzzing.ts),
 * --cli-topology-cases N (40).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runFuzz } from '../test/fuzz/fuzzing';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

async function main(): Promise<void> {
  const cliCases = option('cli-cases', 100);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-fuzz-'));
  try {
    const summary = await runFuzz({
      seed: option('seed', 1),
      modelCases: option('model-cases', 1600),
      idxCases: option('idx-cases', 600),
      cliModelCases: Math.round(cliCases * 0.8),
      cliIdxCases: cliCases - Math.round(cliCases * 0.8),
      topologyCases: option('topology-cases', 600),
      cliTopologyCases: option('cli-topology-cases', 40),
      cliTimeoutMs: 60_000,
      workDir,
      log: (line) => process.stderr.write(line + '\n'),
    });
    const file = path.join(__dirname, '..', 'bench', 'results', 'fuzz.json');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, ...summary }, null, 2) + '\n');
    process.stdout.write(`${summary.totalCases} cases in ${summary.wallSeconds.toFixed(0)} s: ${JSON.stringify(summary.byTarget)}; CLI exit codes ${JSON.stringify(summary.exitCodes)}; ${summary.failures.length} failure(s) -> ${file}\n`);
    process.exitCode = summary.failures.length > 0 ? 1 : 0;
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`fuzz: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
