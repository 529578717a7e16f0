/**
 * The reduced topology campaign of `npm run fuzz` (test/fuzz/topologyFuzzing.ts): the
 * architecture-family models with mutated configs, classes and inbound nodes. Every case must end
 * in a clean accept (inspect + an exact deployment) or a PasInputError / exit 2; never a crash, a
 * hang, a wrong deployment or a write into the input.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import { runFuzz } from '../fuzz/fuzzing';
import { makeTempDir } from '../support/cli';

describe('faults: fuzzed architecture-family topologies (reduced)', function () {
  this.timeout(900_000);

  it('150 topology mutations (6 through the CLI) end cleanly', async () => {
    const workDir = makeTempDir('pas-fuzz-topology-');
    try {
      const summary = await runFuzz({ seed: 11, modelCases: 0, idxCases: 0, cliModelCases: 0, cliIdxCases: 0, topologyCases: 150, cliTopologyCases: 6, cliTimeoutMs: 60_000, workDir });
      assert.deepStrictEqual(summary.failures, [], JSON.stringify(summary.failures, null, 2));
      assert.strictEqual(summary.totalCases, 150 + 6);
      // The mutations must reach past the loader: some mutated models are accepted, some refused.
      assert.ok((summary.byTarget['topology/inProcess'].accepted ?? 0) > 0, JSON.stringify(summary.byTarget));
      assert.ok((summary.byTarget['topology/inProcess'].refused ?? 0) > 0, JSON.stringify(summary.byTarget));
    } finally {
      fs.rmSync(workDir, { recursive: true, force: true });
    }
  });
});
