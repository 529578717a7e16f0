/**
 * The CI fuzz campaign (test/fuzz/fuzzing.ts): over 2,000 mutated model folders and IDX files, a
 * handful of them through the CLI. Every case must end in a clean accept or a PasInputError /
 * exit 2; never a crash, a hang or a write into the input. `npm run fuzz` runs the larger
 * campaign whose counts are committed in bench/results/fuzz.json.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import { runFuzz } from '../fuzz/fuzzing';
import { makeTempDir } from '../support/cli';

const MODEL_CASES = 1500;
const IDX_CASES = 500;
const CLI_MODEL_CASES = 6;
const CLI_IDX_CASES = 2;
const TOTAL = MODEL_CASES + IDX_CASES + CLI_MODEL_CASES + CLI_IDX_CASES;

describe('faults: fuzzed model files and IDX data', function () {
  this.timeout(1_800_000);

  it(`${MODEL_CASES} model and ${IDX_CASES} IDX mutations (${CLI_MODEL_CASES + CLI_IDX_CASES} through the CLI) end cleanly`, async () => {
    const workDir = makeTempDir('pas-fuzz-');
    try {
      const summary = await runFuzz({ seed: 7, modelCases: MODEL_CASES, idxCases: IDX_CASES, cliModelCases: CLI_MODEL_CASES, cliIdxCases: CLI_IDX_CASES, cliTimeoutMs: 60_000, workDir });
      process.stderr.write(`      ${summary.totalCases} fuzz cases in ${summary.wallSeconds.toFixed(0)} s: ${JSON.stringify(summary.byTarget)}\n`);
      assert.deepStrictEqual(summary.failures, [], JSON.stringify(summary.failures, null, 2));
      assert.strictEqual(summary.totalCases, TOTAL);
      assert.ok(summary.totalCases >= 2000);
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  });
});
