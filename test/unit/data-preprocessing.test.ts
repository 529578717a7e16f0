/**
 * The model's preprocessing (issue 10 item 3): each --input-range preset maps black and white
 * pixels onto its documented range, --normalize applies (value - mean) / std per channel after
 * it, and without options the data is standardized with its own statistics (the old default).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { loadDataset } from '../../src/engine/data';
import { applyPreprocessing, INPUT_RANGES, parseNormalize, resolvePreprocessing, type InputRange } from '../../src/engine/data/preprocessing';
import { isPasInputError } from '../../src/engine/errors';
import { makeTempDir } from '../support/cli';

/** A 4x4 RGB PNG, every pixel `rgb`. */
function writeFlatPng(file: string, rgb: [number, number, number]): void {
  const png = new PNG({ width: 4, height: 4 });
  for (let i = 0; i < 16; i++) png.data.set([...rgb, 255], 4 * i);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png));
}

function range(values: Float32Array): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (const v of values) {
    low = Math.min(low, v);
    high = Math.max(high, v);
  }
  return [low, high];
}

describe('input preprocessing presets', () => {
  let root: string;
  before(() => {
    root = makeTempDir('pas-preprocessing-');
    // Black and white images in both classes, so every split holds both extremes.
    for (const [name, rgb] of [['a', [0, 0, 0]], ['b', [255, 255, 255]]] as const) {
      for (let i = 0; i < 5; i++) {
        writeFlatPng(path.join(root, 'train', 'dark', `${name}${i}.png`), [...rgb]);
        writeFlatPng(path.join(root, 'train', 'light', `${name}${i}.png`), [...rgb]);
        writeFlatPng(path.join(root, 'test', 'dark', `${name}${i}.png`), [...rgb]);
      }
    }
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  for (const preset of Object.keys(INPUT_RANGES) as InputRange[]) {
    it(`--input-range ${preset} maps black to ${INPUT_RANGES[preset][0]} and white to ${INPUT_RANGES[preset][1]} in every split`, async () => {
      const dataset = await loadDataset(`folder:${root}`, { inputShape: [4, 4, 3], preprocessing: { inputRange: preset } });
      for (const split of [dataset.train, dataset.validation, dataset.test]) {
        const [low, high] = range(split.images);
        assert.ok(Math.abs(low - INPUT_RANGES[preset][0]) <= 1e-6 * Math.max(1, Math.abs(low)), `low ${low}`);
        assert.ok(Math.abs(high - INPUT_RANGES[preset][1]) <= 1e-6 * Math.max(1, Math.abs(high)), `high ${high}`);
      }
      assert.deepStrictEqual(dataset.preprocessing, { source: 'options', inputRange: preset, mean: [0, 0, 0], std: [1, 1, 1] });
    });
  }

  it('--normalize MEAN,STD and per-channel values apply (value - mean[c]) / std[c] after the range', () => {
    const pixels = Float32Array.from([0, 0, 0, 1, 1, 1]); // a black and a white RGB pixel
    const single = resolvePreprocessing({ normalize: parseNormalize('0.5,0.25') }, 3, () => assert.fail('no data statistics with options'));
    const a = pixels.slice();
    applyPreprocessing(a, single);
    assert.deepStrictEqual(Array.from(a), [-2, -2, -2, 2, 2, 2]);
    const perChannel = resolvePreprocessing({ inputRange: '0,255', normalize: parseNormalize('100,110,120,10,20,40') }, 3, () => assert.fail());
    const b = pixels.slice();
    applyPreprocessing(b, perChannel);
    const expected = [-10, -5.5, -3, 15.5, 7.25, 3.375];
    b.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= 1e-6 * Math.abs(expected[i]), `${i}: ${v} vs ${expected[i]}`));
  });

  it('without options the data is standardized with its training statistics (mean 0, std 1 on the training split)', async () => {
    const dataset = await loadDataset(`folder:${root}`, { inputShape: [4, 4, 1] });
    assert.strictEqual(dataset.preprocessing.source, 'data-statistics');
    const values = dataset.train.images;
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
    assert.ok(Math.abs(mean) < 1e-5 && Math.abs(variance - 1) < 1e-4, `mean ${mean}, variance ${variance}`);
  });

  it('refuses malformed --normalize values and a per-channel count that does not match the model', () => {
    for (const text of ['0.5', '0.5,0', 'a,b', '1,2,3']) assert.throws(() => parseNormalize(text), isPasInputError, text);
    assert.throws(() => resolvePreprocessing({ normalize: parseNormalize('1,2,3,4') }, 3, () => ({ mean: [], std: [] })), /2 values per statistic but the model has 3 input channel/);
  });
});
