/**
 * Turning a split into training or evaluation batches: seeded shuffling per epoch and light
 * augmentation, both done on the Float32Arrays in JS (cheap next to a training step) so that the
 * same seed and epoch give exactly the same batches on any backend.
 */
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';
import { deriveSeed, mulberry32, Random, randomInt, shuffledIndices } from './random';

/** One split of a dataset; images are normalized, laid out [count, height, width, channels]. */
export interface Split {
  /** count * height * width * channels values, normalized with the dataset's mean and std. */
  images: Float32Array;
  /** Class index of each example, in 0..numClasses-1. */
  labels: Int32Array;
  count: number;
  /** [height, width, channels] of each image (the same for every split of a dataset). */
  imageShape: [number, number, number];
  /** Number of classes, the width of the one-hot labels. */
  numClasses: number;
}

/** Light, label-preserving augmentation applied to training batches. */
export interface Augmentation {
  /**
   * Random translation by up to this many pixels in each direction (pad-and-crop). The padding
   * repeats the edge pixels, which for centred objects on a plain background equals padding
   * with the background, and needs no knowledge of the normalization. 0 turns it off.
   */
  padCrop?: number;
  /** Mirror half of the images left-right; right for clothing or objects, wrong for digits or text. */
  horizontalFlip?: boolean;
}

/** Options of `batches`. */
export interface BatchOptions {
  /** Visit the examples in a seeded random order (training) or in order (evaluation). */
  shuffle: boolean;
  seed: number;
  augment?: Augmentation;
  /** The order and augmentation are a function of (seed, epoch); defaults to 0. */
  epoch?: number;
}

/** One batch: images, one-hot labels and the number of examples (the last batch may be short). */
export interface Batch {
  x: tf.Tensor4D;
  y: tf.Tensor2D;
  size: number;
}

// Tags that keep the shuffling and augmentation streams independent of each other.
const SHUFFLE_STREAM = 1;
const AUGMENT_STREAM = 2;

/** The number of batches `batches` yields for this split: the last, partial batch included. */
export function batchCount(split: Split, batchSize: number): number {
  checkBatchSize(batchSize);
  return Math.ceil(split.count / batchSize);
}

/**
 * Yields the split in batches of `batchSize` (the last may be smaller); every example appears
 * exactly once per epoch. With `shuffle`, the order depends only on `seed` and `epoch`;
 * augmentation likewise. The caller owns and must dispose each batch's `x` and `y`.
 */
export function* batches(split: Split, batchSize: number, options: BatchOptions): Generator<Batch> {
  checkBatchSize(batchSize);
  const epoch = options.epoch ?? 0;
  const order = options.shuffle
    ? shuffledIndices(split.count, mulberry32(deriveSeed(options.seed, epoch, SHUFFLE_STREAM)))
    : Int32Array.from({ length: split.count }, (_, i) => i);
  const augment = options.augment && ((options.augment.padCrop ?? 0) > 0 || options.augment.horizontalFlip) ? options.augment : undefined;
  const augmentRandom = mulberry32(deriveSeed(options.seed, epoch, AUGMENT_STREAM));
  const [height, width, channels] = split.imageShape;
  const imageSize = height * width * channels;

  for (let start = 0; start < split.count; start += batchSize) {
    const size = Math.min(batchSize, split.count - start);
    const images = new Float32Array(size * imageSize);
    const oneHot = new Float32Array(size * split.numClasses);
    for (let i = 0; i < size; i++) {
      const example = order[start + i];
      const source = split.images.subarray(example * imageSize, (example + 1) * imageSize);
      if (augment) {
        augmentInto(source, split.imageShape, images, i * imageSize, augment, augmentRandom);
      } else {
        images.set(source, i * imageSize);
      }
      oneHot[i * split.numClasses + split.labels[example]] = 1;
    }
    yield {
      x: tf.tensor4d(images, [size, height, width, channels]),
      y: tf.tensor2d(oneHot, [size, split.numClasses]),
      size,
    };
  }
}

/** Writes one randomly shifted and possibly mirrored copy of `source` into `target`. */
function augmentInto(
  source: Float32Array,
  [height, width, channels]: [number, number, number],
  target: Float32Array,
  targetOffset: number,
  augment: Augmentation,
  random: Random,
): void {
  const pad = Math.floor(augment.padCrop ?? 0);
  // Always draw the same numbers per image, so that turning one option off does not change the other's stream.
  const shiftY = randomInt(random, 2 * pad + 1) - pad;
  const shiftX = randomInt(random, 2 * pad + 1) - pad;
  const flip = random() < 0.5 && augment.horizontalFlip === true;
  let out = targetOffset;
  for (let y = 0; y < height; y++) {
    const sourceY = Math.min(Math.max(y + shiftY, 0), height - 1);
    for (let x = 0; x < width; x++) {
      const shiftedX = Math.min(Math.max(x + shiftX, 0), width - 1);
      const sourceX = flip ? width - 1 - shiftedX : shiftedX;
      const from = (sourceY * width + sourceX) * channels;
      for (let c = 0; c < channels; c++) target[out++] = source[from + c];
    }
  }
}

function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new PasInputError(`batch size must be a positive integer, got ${batchSize}`);
}
