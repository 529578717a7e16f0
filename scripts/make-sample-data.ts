/**
 * Writes the bundled `sample` dataset: a seeded, class-stratified subset of Fashion-MNIST
 * (4000 training and 1000 test images, 400 and 100 per class) as gzipped IDX files in
 * data/sample, read by `loadDataset('sample', ...)`.
 *
 * Source: the Debian package dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`),
 * or any folder holding the four Fashion-MNIST IDX files, given as the first argument.
 *
 *   npm run data:sample [-- SOURCE_DIR]
 */
import { promises as fs } from 'fs';
import * as path from 'path';
import { FASHION_MNIST_CLASS_NAMES } from '../src/engine/data/dataset';
import { IdxImages, IdxLabels, readIdxImagesAndLabels, writeIdxFile } from '../src/engine/data/idx';
import { deriveSeed, mulberry32 } from '../src/engine/data/random';
import { allIndices, stratifiedSplit } from '../src/engine/data/split';

const DEFAULT_SOURCE_DIR = '/usr/share/datasets/fashion-mnist';
const TRAIN_COUNT = 4000;
const TEST_COUNT = 1000;
const SEED = 20170825; // Fashion-MNIST's release date; any fixed number would do.

async function main(): Promise<void> {
  const sourceDir = process.argv[2] ?? DEFAULT_SOURCE_DIR;
  // the script creates the sample that findPackageRoot recognizes the root by
  const outputDir = path.join(__dirname, '..', 'data', 'sample');
  await fs.mkdir(outputDir, { recursive: true });
  const numClasses = FASHION_MNIST_CLASS_NAMES.length;

  const subsets: [prefix: string, count: number][] = [
    ['train', TRAIN_COUNT],
    ['t10k', TEST_COUNT],
  ];
  for (const [prefix, count] of subsets) {
    const { images, labels } = await readIdxImagesAndLabels(
      path.join(sourceDir, `${prefix}-images-idx3-ubyte.gz`),
      path.join(sourceDir, `${prefix}-labels-idx1-ubyte.gz`),
      numClasses,
    );
    const [chosen] = stratifiedSplit(allIndices(images.count), labels.labels, count, mulberry32(deriveSeed(SEED, count)));
    const subset = pick(images, labels, chosen);
    await writeIdxFile(path.join(outputDir, `${prefix}-images-idx3-ubyte.gz`), [chosen.length, images.height, images.width], subset.pixels, { gzip: true });
    await writeIdxFile(path.join(outputDir, `${prefix}-labels-idx1-ubyte.gz`), [chosen.length], subset.labels, { gzip: true });
    console.log(`${prefix}: ${chosen.length} of ${images.count} images, ${countPerClass(subset.labels, numClasses).join('/')} per class`);
  }
  await fs.writeFile(path.join(outputDir, 'classes.txt'), FASHION_MNIST_CLASS_NAMES.join('\n') + '\n');
  console.log(`wrote ${outputDir}`);
}

/** The images and labels at `indices`, in that order. */
function pick(images: IdxImages, labels: IdxLabels, indices: Int32Array): { pixels: Uint8Array; labels: Uint8Array } {
  const imageSize = images.height * images.width;
  const pixels = new Uint8Array(indices.length * imageSize);
  const pickedLabels = new Uint8Array(indices.length);
  indices.forEach((source, i) => {
    pixels.set(images.pixels.subarray(source * imageSize, (source + 1) * imageSize), i * imageSize);
    pickedLabels[i] = labels.labels[source];
  });
  return { pixels, labels: pickedLabels };
}

function countPerClass(labels: Uint8Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
