import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PasInputError } from '../../src/engine/errors';
import { Dataset, defaultAugmentation, FASHION_MNIST_CLASS_NAMES, findPackageRoot, loadDataset, sampleDataDir, Split } from '../../src/engine/data/dataset';
import { writeIdxFile } from '../../src/engine/data/idx';
import { makeTempDir, removeTempDir } from '../fixtures/data/images';

function countPerClass(split: Split): number[] {
  const counts = new Array<number>(split.numClasses).fill(0);
  for (const label of split.labels) counts[label]++;
  return counts;
}

function channelMeanAndStd(split: Split): { mean: number[]; std: number[] } {
  const channels = split.imageShape[2];
  const sums = new Array<number>(channels).fill(0);
  const squares = new Array<number>(channels).fill(0);
  split.images.forEach((value, i) => {
    sums[i % channels] += value;
    squares[i % channels] += value * value;
  });
  const n = split.images.length / channels;
  const mean = sums.map((sum) => sum / n);
  return { mean, std: squares.map((square, c) => Math.sqrt(square / n - mean[c] ** 2)) };
}

async function assertInputError(promise: Promise<unknown>, pattern: RegExp, file?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PasInputError, `expected PasInputError, got ${error}`);
    assert.equal(error.file, file);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('data: loadDataset with the bundled sample', () => {
  let sample: Dataset;
  before(async () => (sample = await loadDataset('sample', { inputShape: [28, 28, 1] })));

  it('finds the package root and the sample folder', () => {
    const root = findPackageRoot();
    assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name, 'pas-vscode');
    assert.ok(fs.existsSync(path.join(sampleDataDir(), 'LICENSE')));
  });

  it('has 10 named classes, the expected counts and balanced labels', () => {
    assert.equal(sample.name, 'fashion-mnist-sample');
    assert.equal(sample.numClasses, 10);
    assert.deepEqual(sample.classNames, FASHION_MNIST_CLASS_NAMES);
    assert.deepEqual(sample.imageShape, [28, 28, 1]);
    assert.deepEqual([sample.train.count, sample.validation.count, sample.test.count], [3600, 400, 1000]);
    assert.deepEqual(countPerClass(sample.train), new Array(10).fill(360));
    assert.deepEqual(countPerClass(sample.validation), new Array(10).fill(40));
    assert.deepEqual(countPerClass(sample.test), new Array(10).fill(100));
    for (const split of [sample.train, sample.validation, sample.test]) {
      assert.equal(split.images.length, split.count * 28 * 28);
      assert.equal(split.labels.length, split.count);
      assert.equal(split.numClasses, 10);
    }
  });

  it('normalizes to zero mean and unit std on the training split, storing the statistics', () => {
    const { mean, std } = channelMeanAndStd(sample.train);
    assert.ok(Math.abs(mean[0]) < 1e-4, `train mean ${mean[0]}`);
    assert.ok(Math.abs(std[0] - 1) < 1e-4, `train std ${std[0]}`);
    // Fashion-MNIST's published pixel statistics are about 0.286 and 0.353.
    assert.ok(Math.abs(sample.mean[0] - 0.286) < 0.01, `stored mean ${sample.mean}`);
    assert.ok(Math.abs(sample.std[0] - 0.353) < 0.01, `stored std ${sample.std}`);
    // Test data uses the training statistics, so it is close to, not exactly, standardized.
    const test = channelMeanAndStd(sample.test);
    assert.ok(Math.abs(test.mean[0]) < 0.05 && test.mean[0] !== 0);
  });

  it('replicates gray to three channels and resizes for a 32x32x3 model', async () => {
    const rgb = await loadDataset('sample', { inputShape: [32, 32, 3], maxTrain: 200, maxTest: 50 });
    assert.deepEqual(rgb.imageShape, [32, 32, 3]);
    assert.deepEqual(rgb.train.imageShape, [32, 32, 3]);
    assert.equal(rgb.test.images.length, 50 * 32 * 32 * 3);
    for (let i = 0; i < rgb.train.images.length; i += 3) {
      assert.ok(rgb.train.images[i] === rgb.train.images[i + 1] && rgb.train.images[i] === rgb.train.images[i + 2]);
    }
    const { mean } = channelMeanAndStd(rgb.train);
    mean.forEach((value) => assert.ok(Math.abs(value) < 1e-4));
  });

  it('caps, stratified, and splits validation deterministically by seed', async () => {
    const load = (seed: number) => loadDataset('sample', { inputShape: [28, 28, 1], maxTrain: 1000, maxTest: 200, validationFraction: 0.2, seed });
    const first = await load(5);
    const again = await load(5);
    const other = await load(6);
    assert.deepEqual([first.train.count, first.validation.count, first.test.count], [800, 200, 200]);
    assert.deepEqual(countPerClass(first.train), new Array(10).fill(80));
    assert.deepEqual(countPerClass(first.validation), new Array(10).fill(20));
    assert.deepEqual(countPerClass(first.test), new Array(10).fill(20));
    assert.deepEqual(Array.from(again.validation.images), Array.from(first.validation.images));
    assert.notDeepEqual(Array.from(other.validation.images), Array.from(first.validation.images));
  });

  it('flips clothing but not digits by default', () => {
    assert.deepEqual(defaultAugmentation(sample), { padCrop: 2, horizontalFlip: true });
    assert.deepEqual(defaultAugmentation({ name: 'mnist' }), { padCrop: 2, horizontalFlip: false });
  });

  it('allows no validation split, and tolerates spaces around the spec', async () => {
    const noValidation = await loadDataset(' sample ', { inputShape: [28, 28, 1], validationFraction: 0, maxTest: 10 });
    assert.equal(noValidation.validation.count, 0);
    assert.equal(noValidation.train.count, 4000);
  });
});

describe('data: loadDataset specs and options', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeTempDir(dir));

  /** Writes a tiny IDX dataset: 2x3 images, labels cycling through `numClasses`. */
  async function writeTinyIdx(trainCount: number, testCount: number, numClasses: number, names: (prefix: string, kind: string) => string) {
    for (const [prefix, count] of [['train', trainCount], ['t10k', testCount]] as const) {
      const pixels = Uint8Array.from({ length: count * 6 }, (_, i) => i % 251);
      const labels = Uint8Array.from({ length: count }, (_, i) => i % numClasses);
      await writeIdxFile(path.join(dir, names(prefix, 'images')), [count, 2, 3], pixels, { gzip: true });
      await writeIdxFile(path.join(dir, names(prefix, 'labels')), [count], labels, { gzip: false });
    }
  }

  it('loads idx:DIR with standard and dotted names, gzipped or not', async () => {
    await writeTinyIdx(20, 6, 4, (prefix, kind) => (kind === 'images' ? `${prefix}-images-idx3-ubyte.gz` : `${prefix}-labels.idx1-ubyte`));
    const dataset = await loadDataset(`idx:${dir}`, { inputShape: [2, 3, 1], validationFraction: 0.2 });
    assert.equal(dataset.name, path.basename(dir));
    assert.deepEqual(dataset.classNames, ['0', '1', '2', '3']);
    assert.deepEqual([dataset.train.count, dataset.validation.count, dataset.test.count], [16, 4, 6]);
    assert.deepEqual(countPerClass(dataset.validation), [1, 1, 1, 1]);
  });

  it('reads class names from classes.txt and checks labels against them', async () => {
    await writeTinyIdx(10, 4, 3, (prefix, kind) => `${prefix}-${kind}-idx${kind === 'images' ? 3 : 1}-ubyte`);
    fs.writeFileSync(path.join(dir, 'classes.txt'), 'cat\ndog\nbird\n\n');
    const dataset = await loadDataset(`idx:${dir}`, { inputShape: [2, 3, 1] });
    assert.deepEqual(dataset.classNames, ['cat', 'dog', 'bird']);
    fs.writeFileSync(path.join(dir, 'classes.txt'), 'cat\ndog\n');
    await assertInputError(
      loadDataset(`idx:${dir}`, { inputShape: [2, 3, 1] }),
      /label 2 at index 2 is out of range: the dataset has 2 classes/,
      path.join(dir, 'train-labels-idx1-ubyte'),
    );
  });

  it('names the missing IDX file', async () => {
    await writeTinyIdx(10, 4, 3, (prefix, kind) => `${prefix}-${kind}-idx${kind === 'images' ? 3 : 1}-ubyte`);
    fs.unlinkSync(path.join(dir, 't10k-labels-idx1-ubyte'));
    await assertInputError(loadDataset(`idx:${dir}`, { inputShape: [2, 3, 1] }), /missing test labels: expected t10k-labels-idx1-ubyte or t10k-labels-idx1-ubyte\.gz/, dir);
  });

  it('rejects an unknown spec, listing the accepted forms', async () => {
    for (const spec of ['mnist', 'csv:/tmp/x', 'idx:', '']) {
      await assertInputError(loadDataset(spec, { inputShape: [28, 28, 1] }), /use idx:DIR .*folder:DIR .*or sample/);
    }
  });

  it('rejects bad options', async () => {
    await assertInputError(loadDataset('sample', { inputShape: [28, 28, 2] }), /expects 2 input channels; datasets supply 1 \(grayscale\) or 3 \(RGB\)/);
    await assertInputError(loadDataset('sample', { inputShape: [28, 0, 1] }), /input shape must be \[height, width, channels\] of positive integers/);
    await assertInputError(loadDataset('sample', { inputShape: [28, 28, 1], validationFraction: 1 }), /validation fraction must be at least 0 and below 1/);
    await assertInputError(loadDataset('sample', { inputShape: [28, 28, 1], maxTrain: 0 }), /maxTrain must be a positive integer/);
  });
});
