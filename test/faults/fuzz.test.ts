/**
 * The reduced fuzz campaign of `npm run fuzz` (test/fuzz/fuzzing.ts): a few hundred mutated
 * model folders and IDX files, a handful of them through the CLI. Every case must end in a
 * clean accept or a PasInputError / exit 2; never a crash, a hang or a write into the input.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import { runFuzz } from '../fuzz/fuzzing';
import { makeTempDir } from '../support/cli';

describe('faults: fuzzed model files and IDX data (reduced)', function () {
  this.timeout(600_000);

  it('300 model and 120 IDX mutations (8 through the CLI) end cleanly', async () => {
    const workDir = makeTempDir('pas-fuzz-');
    try {
      const summary = await runFuzz({ seed: 7, modelCases: 300, idxCases: 120, cliModelCases: 6, cliIdxCases: 2, cliTimeoutMs: 60_000, workDir });
      assert.deepStrictEqual(summary.failures, [], JSON.stringify(summary.failures, null, 2));
      assert.strictEqual(summary.totalCases, 300 + 120 + 8);
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  });
});
