import { strict as assert } from 'assert';
import { formatCompareTable } from '../../src/cli/commands/compare';
import { compareEpochs, type CompareReport } from '../../src/engine/compare/compare';
import { methodSearches, PRUNE_METHOD_NAMES, PRUNE_METHODS } from '../../src/engine/search/methods';

describe('the method table and compare', () => {
  it('lists pas, uniform and magnitude; a select method has its selection function, a search method none', () => {
    assert.deepEqual(PRUNE_METHOD_NAMES, ['pas', 'uniform', 'magnitude']);
    for (const name of PRUNE_METHOD_NAMES) {
      const spec = PRUNE_METHODS[name];
      assert.equal(spec.kind === 'select', typeof spec.select === 'function', name);
    }
    assert.ok(methodSearches('pas') && !methodSearches('uniform') && !methodSearches('magnitude'));
  });

  it('compare gives every method the same weight-training epochs', () => {
    for (const name of PRUNE_METHOD_NAMES) {
      const epochs = compareEpochs(name, 3, 5);
      assert.equal(epochs.searchEpochs + epochs.finetuneEpochs, 8, name);
      assert.equal(epochs.searchEpochs, methodSearches(name) ? 3 : 0, name);
    }
  });

  it('the compare table shows every method and every layer width side by side', () => {
    const row = (method: 'pas' | 'uniform', widths: number[]) => ({
      method, outputDir: `/x/${method}`, accuracy: 0.9, macs: 100, macsFraction: 0.5, params: 10, latencyMs: null,
      epochs: { search: method === 'pas' ? 1 : 0, finetune: method === 'pas' ? 1 : 2 }, wallSeconds: 1,
      widths: widths.map((w, i) => ({ name: `layer${i}`, originalWidth: 8, width: w })),
    });
    const report: CompareReport = { model: 'm', data: 'd', targetFraction: 0.5, seed: 1, accuracyBefore: 0.91, macsBefore: 200, paramsBefore: 20, rows: [row('pas', [3, 7]), row('uniform', [5, 6])] };
    const table = formatCompareTable(report);
    assert.match(table, /layer0\s+8\s+3\s+5/);
    assert.match(table, /layer1\s+8\s+7\s+6/);
    assert.match(table, /uniform\s+90\.00%/);
    assert.match(table, /n\/a/);
  });
});
