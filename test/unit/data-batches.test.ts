import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../../src/engine/errors';
import { Augmentation, batchCount, batches, Split } from '../../src/engine/data/batches';
import { deriveSeed, mulberry32, shuffledIndices } from '../../src/engine/data/random';

const [HEIGHT, WIDTH, CHANNELS] = [5, 6, 2];
const IMAGE_SIZE = HEIGHT * WIDTH * CHANNELS;

/** A split whose image i holds values 1000*i + position, so every value says where it came from. */
function traceableSplit(count: number, numClasses = 3): Split {
  const images = new Float32Array(count * IMAGE_SIZE);
  for (let i = 0; i < images.length; i++) images[i] = 1000 * Math.floor(i / IMAGE_SIZE) + (i % IMAGE_SIZE);
  const labels = Int32Array.from({ length: count }, (_, i) => (i * 7) % numClasses);
  return { images, labels, count, imageShape: [HEIGHT, WIDTH, CHANNELS], numClasses };
}

interface Collected {
  /** Example index of each yielded image, in order. */
  order: number[];
  images: number[][];
  oneHot: number[][];
  sizes: number[];
}

/** Runs one epoch, reads every batch back and disposes it. */
function collect(split: Split, batchSize: number, options: Parameters<typeof batches>[2]): Collected {
  const collected: Collected = { order: [], images: [], oneHot: [], sizes: [] };
  for (const batch of batches(split, batchSize, options)) {
    assert.deepEqual(batch.x.shape, [batch.size, HEIGHT, WIDTH, CHANNELS]);
    assert.deepEqual(batch.y.shape, [batch.size, split.numClasses]);
    const x = batch.x.dataSync();
    const y = batch.y.dataSync();
    for (let i = 0; i < batch.size; i++) {
      const image = Array.from(x.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE));
      collected.images.push(image);
      collected.order.push(Math.floor(Math.min(...image) / 1000));
      collected.oneHot.push(Array.from(y.subarray(i * split.numClasses, (i + 1) * split.numClasses)));
    }
    collected.sizes.push(batch.size);
    batch.x.dispose();
    batch.y.dispose();
  }
  return collected;
}

describe('data: seeded random numbers', () => {
  it('repeats a sequence for a seed and differs between seeds', () => {
    const draw = (seed: number) => Array.from({ length: 5 }, mulberry32(seed));
    assert.deepEqual(draw(7), draw(7));
    assert.notDeepEqual(draw(7), draw(8));
    draw(7).forEach((value) => assert.ok(value >= 0 && value < 1));
  });

  it('derives unrelated seeds for neighbouring epochs, and shuffles to a permutation', () => {
    assert.notEqual(deriveSeed(1, 0), deriveSeed(1, 1));
    assert.notEqual(deriveSeed(1, 2), deriveSeed(2, 1));
    const shuffled = Array.from(shuffledIndices(50, mulberry32(3)));
    assert.deepEqual([...shuffled].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
    assert.notDeepEqual(shuffled, Array.from({ length: 50 }, (_, i) => i));
  });
});

describe('data: batches', () => {
  const split = traceableSplit(23);
  let tensorsBefore: number;
  beforeEach(() => (tensorsBefore = tf.memory().numTensors));
  afterEach(() => assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensors leaked'));

  it('counts batches, the last one partial', () => {
    assert.equal(batchCount(split, 5), 5);
    assert.equal(batchCount(split, 23), 1);
    assert.equal(batchCount(split, 100), 1);
    assert.deepEqual(collect(split, 5, { shuffle: true, seed: 1 }).sizes, [5, 5, 5, 5, 3]);
    assert.throws(() => batchCount(split, 0), PasInputError);
    assert.throws(() => batches(split, 2.5, { shuffle: false, seed: 0 }).next(), PasInputError);
  });

  it('yields every example exactly once per epoch, in order without shuffling', () => {
    const plain = collect(split, 4, { shuffle: false, seed: 9 });
    assert.deepEqual(plain.order, Array.from({ length: 23 }, (_, i) => i));
    assert.deepEqual(plain.images[5], Array.from(split.images.subarray(5 * IMAGE_SIZE, 6 * IMAGE_SIZE)));
    const shuffled = collect(split, 4, { shuffle: true, seed: 9, epoch: 3 });
    assert.deepEqual([...shuffled.order].sort((a, b) => a - b), plain.order);
    assert.notDeepEqual(shuffled.order, plain.order);
  });

  it('gives the same order for the same seed and epoch, another for another epoch or seed', () => {
    const order = (seed: number, epoch: number) => collect(split, 6, { shuffle: true, seed, epoch }).order;
    assert.deepEqual(order(4, 1), order(4, 1));
    assert.notDeepEqual(order(4, 1), order(4, 2));
    assert.notDeepEqual(order(4, 1), order(5, 1));
  });

  it('one-hot encodes the label of each yielded example', () => {
    const collected = collect(split, 7, { shuffle: true, seed: 2 });
    collected.order.forEach((example, i) => {
      const expected = Array.from({ length: split.numClasses }, (_, c) => (c === split.labels[example] ? 1 : 0));
      assert.deepEqual(collected.oneHot[i], expected, `example ${example}`);
    });
  });

  it('augments deterministically, keeping shape, labels and pixel values', () => {
    const augment: Augmentation = { padCrop: 2, horizontalFlip: true };
    const first = collect(split, 8, { shuffle: true, seed: 11, epoch: 1, augment });
    const again = collect(split, 8, { shuffle: true, seed: 11, epoch: 1, augment });
    const nextEpoch = collect(split, 8, { shuffle: true, seed: 11, epoch: 2, augment });
    assert.deepEqual(again.images, first.images);
    assert.notDeepEqual(nextEpoch.images.slice().sort(), first.images.slice().sort());

    let changed = 0;
    first.order.forEach((example, i) => {
      const original = Array.from(split.images.subarray(example * IMAGE_SIZE, (example + 1) * IMAGE_SIZE));
      const image = first.images[i];
      assert.equal(image.length, IMAGE_SIZE);
      // Shifting and mirroring only move pixels: every value comes from the same image and channel.
      image.forEach((value, position) => {
        assert.equal(Math.floor(value / 1000), example);
        assert.equal((value % 1000) % CHANNELS, position % CHANNELS);
      });
      if (image.some((value, position) => value !== original[position])) changed++;
    });
    assert.ok(changed > split.count / 2, `only ${changed} of ${split.count} images changed`);
  });

  it('flip alone mirrors each image or leaves it unchanged', () => {
    const collected = collect(split, 23, { shuffle: false, seed: 5, augment: { padCrop: 0, horizontalFlip: true } });
    let flipped = 0;
    collected.order.forEach((example, i) => {
      const original = split.images.subarray(example * IMAGE_SIZE, (example + 1) * IMAGE_SIZE);
      const mirrored = new Float32Array(IMAGE_SIZE);
      for (let y = 0; y < HEIGHT; y++)
        for (let x = 0; x < WIDTH; x++)
          for (let c = 0; c < CHANNELS; c++) mirrored[(y * WIDTH + x) * CHANNELS + c] = original[(y * WIDTH + (WIDTH - 1 - x)) * CHANNELS + c];
      const image = collected.images[i];
      const isOriginal = image.every((value, p) => value === original[p]);
      const isMirrored = image.every((value, p) => value === mirrored[p]);
      assert.ok(isOriginal || isMirrored, `example ${example} is neither itself nor its mirror`);
      if (isMirrored) flipped++;
    });
    assert.ok(flipped > 3 && flipped < 20, `${flipped} of 23 flipped`);
  });

  it('pad-and-crop alone shifts by at most the padding, repeating edge pixels', () => {
    const collected = collect(split, 23, { shuffle: false, seed: 6, augment: { padCrop: 1 } });
    collected.order.forEach((example, i) => {
      const image = collected.images[i];
      for (let y = 0; y < HEIGHT; y++) {
        for (let x = 0; x < WIDTH; x++) {
          const position = (image[(y * WIDTH + x) * CHANNELS] % 1000) / CHANNELS;
          const [sourceY, sourceX] = [Math.floor(position / WIDTH), position % WIDTH];
          assert.ok(Math.abs(sourceY - y) <= 1 && Math.abs(sourceX - x) <= 1, `example ${example} (${y},${x}) came from (${sourceY},${sourceX})`);
        }
      }
    });
  });

  it('yields nothing for an empty split', () => {
    const empty: Split = { images: new Float32Array(0), labels: new Int32Array(0), count: 0, imageShape: [HEIGHT, WIDTH, CHANNELS], numClasses: 3 };
    assert.equal(batchCount(empty, 4), 0);
    assert.deepEqual(collect(empty, 4, { shuffle: true, seed: 1 }).sizes, []);
  });
});
