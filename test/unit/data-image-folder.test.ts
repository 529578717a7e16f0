import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../../src/engine/errors';
import { loadDataset } from '../../src/engine/data/dataset';
import { decodeImageFile, listImageFolder } from '../../src/engine/data/imageFolder';
import { convertChannels, resizeBilinearInto, writeImageAsFloats } from '../../src/engine/data/imageOps';
import { makeTempDir, removeTempDir, solid, writeJpeg, writePng } from '../fixtures/data/images';

async function assertInputError(promise: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PasInputError, `expected PasInputError, got ${error}`);
    assert.equal(error.file, file);
    assert.match(error.message, pattern);
    return true;
  });
}

/** Undoes the dataset's normalization of one value, giving back the [0, 1] pixel value. */
function rawValue(normalized: number, mean: number, std: number): number {
  return normalized * std + mean;
}

describe('data: image operations', () => {
  it('resizes bilinearly with half-pixel centres', () => {
    // A 1x2 image [0, 1] widened to 1x4: sample points -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    const target = new Float32Array(4);
    resizeBilinearInto([0, 1], 1, 2, 1, target, 0, 1, 4);
    assert.deepEqual(Array.from(target), [0, 0.25, 0.75, 1]);
  });

  it('matches tf.image.resizeBilinear with halfPixelCenters, up and down, without leaking tensors', () => {
    const before = tf.memory().numTensors;
    const [height, width, channels] = [7, 5, 3];
    const source = Float32Array.from({ length: height * width * channels }, (_, i) => Math.sin(i * 1.7) * 100);
    for (const [outHeight, outWidth] of [[12, 9], [3, 4], [7, 5]]) {
      const ours = new Float32Array(outHeight * outWidth * channels);
      resizeBilinearInto(source, height, width, channels, ours, 0, outHeight, outWidth);
      const reference = tf.tidy(() =>
        tf.image.resizeBilinear(tf.tensor3d(source, [height, width, channels]), [outHeight, outWidth], false, true).dataSync(),
      );
      ours.forEach((value, i) => assert.ok(Math.abs(value - reference[i]) < 1e-3, `value ${i}: ${value} vs ${reference[i]}`));
    }
    assert.equal(tf.memory().numTensors, before);
  });

  it('converts gray to RGB by replication and RGB to gray by luma', () => {
    assert.deepEqual(Array.from(convertChannels([10, 200], 2, 1, 3)), [10, 10, 10, 200, 200, 200]);
    const gray = convertChannels([255, 0, 0, 255, 0, 0, 255, 7], 2, 4, 1);
    assert.ok(Math.abs(gray[0] - 0.299 * 255) < 1e-3);
    assert.ok(Math.abs(gray[1] - 0.114 * 255) < 1e-3);
    assert.deepEqual(Array.from(convertChannels([1, 2, 3, 4], 1, 4, 3)), [1, 2, 3]);
  });
});

describe('data: image folders', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeTempDir(dir));

  it('lists classes in sorted order, finds PNG and JPEG recursively and reports other files', async () => {
    writePng(path.join(dir, 'zebra', 'a.png'), 4, 4, solid(0, 0, 0));
    writeJpeg(path.join(dir, 'apple', 'nested', 'b.JPG'), 4, 4, solid(0, 0, 0));
    writeJpeg(path.join(dir, 'apple', 'c.jpeg'), 4, 4, solid(0, 0, 0));
    fs.writeFileSync(path.join(dir, 'apple', 'notes.txt'), 'not an image');
    fs.writeFileSync(path.join(dir, 'zebra', '.DS_Store'), 'hidden');
    fs.mkdirSync(path.join(dir, '.hidden-class'));

    const listing = await listImageFolder(dir);
    assert.deepEqual(listing.classNames, ['apple', 'zebra']);
    assert.deepEqual(
      listing.files.map((entry) => [path.relative(dir, entry.file), entry.classIndex]),
      [[path.join('apple', 'c.jpeg'), 0], [path.join('apple', 'nested', 'b.JPG'), 0], [path.join('zebra', 'a.png'), 1]],
    );
    assert.deepEqual(listing.skipped, [path.join(dir, 'apple', 'notes.txt')]);
  });

  it('decodes PNG and JPEG to RGBA, choosing the decoder by content', async () => {
    const pngFile = path.join(dir, 'red.png');
    const jpegNamedPng = path.join(dir, 'really-a-jpeg.png');
    writePng(pngFile, 3, 2, solid(255, 0, 0));
    writeJpeg(jpegNamedPng, 8, 8, solid(0, 0, 255));
    const png = await decodeImageFile(pngFile);
    assert.deepEqual([png.width, png.height], [3, 2]);
    assert.deepEqual(Array.from(png.rgba.subarray(0, 4)), [255, 0, 0, 255]);
    const jpeg = await decodeImageFile(jpegNamedPng);
    assert.deepEqual([jpeg.width, jpeg.height], [8, 8]);
    const [r, g, b] = jpeg.rgba;
    assert.ok(r < 10 && g < 10 && b > 245, `JPEG blue came back as ${[r, g, b]}`);
  });

  it('turns a red PNG into luma for a one-channel model', async () => {
    const file = path.join(dir, 'red.png');
    writePng(file, 2, 2, solid(255, 0, 0));
    const image = await decodeImageFile(file);
    const target = new Float32Array(4);
    writeImageAsFloats(image.rgba, [image.height, image.width, 4], target, 0, [2, 2, 1]);
    target.forEach((value) => assert.ok(Math.abs(value - 0.299) < 1e-6));
  });

  it('loads train/test folders, resizing grayscale PNGs and JPEGs to an RGB input shape', async () => {
    // Two classes told apart by brightness; gray PNGs of 12x12 and RGB JPEGs of 6x10.
    for (let i = 0; i < 5; i++) {
      writePng(path.join(dir, 'train', 'dark', `d${i}.png`), 12, 12, (x) => [20 + x, 0, 0], { grayscale: true });
      writeJpeg(path.join(dir, 'train', 'light', `l${i}.jpg`), 10, 6, solid(220, 220, 220));
    }
    writePng(path.join(dir, 'test', 'dark', 'd.png'), 12, 12, solid(20, 20, 20), { grayscale: true });
    writeJpeg(path.join(dir, 'test', 'light', 'l.jpg'), 10, 6, solid(220, 220, 220));
    writeJpeg(path.join(dir, 'test', 'light', 'l2.jpg'), 10, 6, solid(220, 220, 220));

    const dataset = await loadDataset(`folder:${dir}`, { inputShape: [8, 8, 3], validationFraction: 0.2, seed: 3 });
    assert.deepEqual(dataset.classNames, ['dark', 'light']);
    assert.equal(dataset.numClasses, 2);
    assert.deepEqual(dataset.imageShape, [8, 8, 3]);
    assert.deepEqual([dataset.train.count, dataset.validation.count, dataset.test.count], [8, 2, 3]);
    assert.deepEqual(Array.from(dataset.validation.labels).sort(), [0, 1], 'validation is stratified');
    assert.deepEqual(Array.from(dataset.test.labels), [0, 1, 1]);
    assert.equal(dataset.test.images.length, 3 * 8 * 8 * 3);
    assert.deepEqual(dataset.warnings, []);

    // The gray test image became three equal channels of value 20/255.
    const { mean, std } = dataset;
    for (let p = 0; p < 64; p++) {
      const rgb = [0, 1, 2].map((c) => rawValue(dataset.test.images[p * 3 + c], mean[c], std[c]));
      rgb.forEach((value) => assert.ok(Math.abs(value - 20 / 255) < 1e-5, `pixel ${p}: ${rgb}`));
    }
    // The light JPEG came through at about 220/255.
    const light = rawValue(dataset.test.images[64 * 3], mean[0], std[0]);
    assert.ok(Math.abs(light - 220 / 255) < 0.03, `light pixel ${light}`);
  });

  it('splits a single folder into train and test by seed, stratified and deterministic', async () => {
    for (const name of ['a', 'b']) {
      for (let i = 0; i < 10; i++) writePng(path.join(dir, name, `${i}.png`), 4, 4, solid(i * 20, 0, 0));
    }
    fs.writeFileSync(path.join(dir, 'a', 'readme.md'), 'hello');
    const load = (seed: number) => loadDataset(`folder:${dir}`, { inputShape: [4, 4, 1], validationFraction: 0, seed });
    const first = await load(1);
    const again = await load(1);
    const other = await load(2);
    assert.equal(first.test.count, 4);
    assert.equal(first.train.count, 16);
    assert.deepEqual(Array.from(first.test.labels), [0, 0, 1, 1]);
    assert.deepEqual(Array.from(again.test.images), Array.from(first.test.images));
    assert.notDeepEqual(Array.from(other.test.images), Array.from(first.test.images));
    assert.equal(first.warnings.length, 1);
    assert.match(first.warnings[0], /skipped 1 file\(s\) that are not PNG or JPEG: a[\\/]readme\.md/);
  });

  it('names the corrupt image file', async () => {
    writePng(path.join(dir, 'cats', 'good.png'), 4, 4, solid(1, 2, 3));
    writePng(path.join(dir, 'dogs', 'good.png'), 4, 4, solid(1, 2, 3));
    const truncatedPng = path.join(dir, 'dogs', 'truncated.png');
    fs.writeFileSync(truncatedPng, fs.readFileSync(path.join(dir, 'dogs', 'good.png')).subarray(0, 30));
    await assertInputError(loadDataset(`folder:${dir}`, { inputShape: [4, 4, 1], validationFraction: 0 }), truncatedPng, /corrupt PNG image/);

    fs.unlinkSync(truncatedPng);
    const notAnImage = path.join(dir, 'dogs', 'text.jpg');
    fs.writeFileSync(notAnImage, 'plain text with a .jpg name');
    await assertInputError(
      loadDataset(`folder:${dir}`, { inputShape: [4, 4, 1], validationFraction: 0 }),
      notAnImage,
      /corrupt or unsupported image: it starts with bytes 70 6c 61 69, not a PNG or JPEG signature/,
    );

    fs.unlinkSync(notAnImage);
    const brokenJpeg = path.join(dir, 'dogs', 'broken.jpg');
    fs.writeFileSync(brokenJpeg, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3]));
    await assertInputError(decodeImageFile(brokenJpeg), brokenJpeg, /corrupt JPEG image/);
  });

  it('rejects an empty class folder, naming it', async () => {
    writePng(path.join(dir, 'cats', 'a.png'), 4, 4, solid(1, 2, 3));
    fs.mkdirSync(path.join(dir, 'dogs'));
    await assertInputError(listImageFolder(dir), path.join(dir, 'dogs'), /class folder 'dogs' has no PNG or JPEG images \(it is empty\)/);
    fs.writeFileSync(path.join(dir, 'dogs', 'dog.gif'), 'GIF89a');
    await assertInputError(listImageFolder(dir), path.join(dir, 'dogs'), /holds only 1 other file\(s\): dog\.gif/);
  });

  it('rejects a single class and a folder with no class folders', async () => {
    fs.writeFileSync(path.join(dir, 'loose.png'), 'x');
    await assertInputError(listImageFolder(dir), dir, /no class folders found/);
    writePng(path.join(dir, 'only', 'a.png'), 4, 4, solid(1, 2, 3));
    await assertInputError(loadDataset(`folder:${dir}`, { inputShape: [4, 4, 1] }), dir, /only one class folder \('only'\) found: classification needs at least 2 classes/);
  });

  it('rejects a test class that the training folder lacks, and a missing folder', async () => {
    writePng(path.join(dir, 'train', 'a', '1.png'), 4, 4, solid(1, 2, 3));
    writePng(path.join(dir, 'train', 'b', '1.png'), 4, 4, solid(1, 2, 3));
    writePng(path.join(dir, 'test', 'c', '1.png'), 4, 4, solid(1, 2, 3));
    await assertInputError(
      loadDataset(`folder:${dir}`, { inputShape: [4, 4, 1] }),
      path.join(dir, 'test', 'c'),
      /class folder 'c' has no matching class in the training folder \(classes: a, b\)/,
    );
    const missing = path.join(dir, 'nowhere');
    await assertInputError(loadDataset(`folder:${missing}`, { inputShape: [4, 4, 1] }), missing, /does not exist/);
  });
});
