import { strict as assert } from 'assert';
import { maskedPhaseLearningRate, type LearningRateSchedule } from '../../src/engine/search/learningRateSchedule';

const BASE = 0.02;

/** The learning rate of every weight-training epoch of a run after the trained model, in order. */
function curve(method: 'pas' | 'uniform' | 'magnitude', searchEpochs: number, finetuneEpochs: number, schedule: LearningRateSchedule): number[] {
  const settings = { method, searchEpochs, finetuneEpochs, learningRateSchedule: schedule };
  const searched = method === 'pas' ? Array.from({ length: searchEpochs }, (_, e) => maskedPhaseLearningRate(settings, 'search', e, BASE)) : [];
  return [...searched, ...Array.from({ length: finetuneEpochs }, (_, e) => maskedPhaseLearningRate(settings, 'finetune', e, BASE))];
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('learning-rate schedule of the masked phases', () => {
  for (const [search, finetune] of [[2, 2], [1, 3], [3, 5]]) {
    it(`shared: PaS's ${search} search + ${finetune} fine-tune epochs follow a baseline's ${search + finetune}-epoch curve, epoch for epoch`, () => {
      const pas = curve('pas', search, finetune, 'shared');
      for (const baseline of ['uniform', 'magnitude'] as const) {
        // A baseline run gets every epoch as fine-tuning (--search-epochs is ignored for it).
        const other = curve(baseline, 4, search + finetune, 'shared');
        assert.equal(pas.length, other.length);
        pas.forEach((lr, e) => assert.ok(Math.abs(lr - other[e]) <= 1e-12 * BASE, `epoch ${e}: ${lr} vs ${other[e]}`));
      }
      assert.equal(pas[0], BASE, 'starts at the base rate');
      for (let e = 1; e < pas.length; e++) assert.ok(pas[e] < pas[e - 1], `decreasing at epoch ${e}: ${pas}`);
    });
  }

  it('per-phase: a constant search, then a cosine restarted over the fine-tune, more in total than the baseline', () => {
    const pas = curve('pas', 2, 2, 'per-phase');
    assert.deepEqual(pas.slice(0, 2), [BASE, BASE]);
    assert.equal(pas[2], BASE, 'the fine-tune restarts at the base rate');
    assert.ok(pas[3] < pas[2]);
    const baseline = curve('uniform', 0, 4, 'per-phase');
    assert.ok(sum(pas) > sum(baseline) * 1.2, `${sum(pas)} vs ${sum(baseline)}`);
    assert.ok(pas[3] > 2 * baseline[3], 'ends on a higher rate than the baseline');
    // The baselines' curve does not depend on the schedule: they have no search phase.
    assert.deepEqual(baseline, curve('uniform', 0, 4, 'shared'));
  });
});
