/**
 * Loading a dataset for training and evaluation from a spec string:
 *
 * - `idx:DIR`: MNIST-style IDX files in DIR (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
 *   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`, also with a dot
 *   before `idx`, as some mirrors name them). Class names come from `DIR/classes.txt` (one per
 *   line) if present, else Fashion-MNIST's names when DIR's name says fashion-mnist, else "0".."N-1".
 * - `folder:DIR`: image folders, `DIR/train/<class>/*` and `DIR/test/<class>/*` when DIR/train
 *   exists, else `DIR/<class>/*` split into train and test (20%, stratified, seeded).
 * - `sample`: the Fashion-MNIST subset bundled in `data/sample` (4000 train, 1000 test).
 *
 * - `folder:DIR` holding images but no subfolders: unlabelled images (for distillation).
 *
 * Every split is converted to the model's input shape (bilinear resize; gray replicated to RGB,
 * RGB reduced to gray by luma) and then preprocessed (preprocessing.ts): with the model's own
 * input range and normalization when the user gave them, else standardized per channel with the
 * mean and std of the training split (after the validation examples are held out), so no
 * statistic leaks from validation or test data: (pixel / 255 - mean[c]) / std[c].
 */
import { existsSync, promises as fs } from 'fs';
import * as path from 'path';
import { PasInputError } from '../errors';
import { Augmentation, batchCount, batches, Split } from './batches';
import { readIdxImagesAndLabels } from './idx';
import { describeFiles, listImageFolder, loadImagesInto } from './imageFolder';
import { writeImageAsFloats } from './imageOps';
import { deriveSeed, mulberry32 } from './random';
import { allIndices, stratifiedSplit } from './split';
import { allInOrder } from './settle';
import { applyPreprocessing, resolvePreprocessing, type AppliedPreprocessing, type PreprocessingOptions } from './preprocessing';
import { decodeImageFile, findImageFiles } from './imageFolder';

export { batchCount, batches };
export type { Augmentation, Batch, BatchOptions, Split } from './batches';

/** A dataset ready for training: three normalized splits sharing one image shape. */
export interface Dataset {
  /** A short name for reports, e.g. "fashion-mnist-sample" or the data folder's name. */
  name: string;
  numClasses: number;
  /** Name of each class index. */
  classNames: string[];
  /** [height, width, channels] of every image: the model's input shape. */
  imageShape: [number, number, number];
  /** Per-channel mean of the training images scaled to [0, 1], before normalization. */
  mean: number[];
  /** Per-channel standard deviation of the training images scaled to [0, 1], before normalization. */
  std: number[];
  train: Split;
  validation: Split;
  test: Split;
  /** Things the user should know that did not stop loading (skipped files, for instance). */
  warnings: string[];
  /**
   * False for a flat folder of images without class subfolders: every label is 0, `numClasses`
   * is 0 and `classNames` empty; such data can only be used by distillation.
   */
  labelled: boolean;
  /** What turned pixels into the model's input values (report.json records it). */
  preprocessing: AppliedPreprocessing;
}

/** Options of `loadDataset`. */
export interface LoadDatasetOptions {
  /** The model's input [height, width, channels]; channels must be 1 or 3. */
  inputShape: [number, number, number];
  /** Fraction of the training examples held out for validation, stratified; default 0.1. */
  validationFraction?: number;
  /** Seed of every random choice (validation split, subsets, folder train/test split); default 42. */
  seed?: number;
  /** Cap on the examples drawn (stratified) from the training source, before the validation split. */
  maxTrain?: number;
  /** Cap on the test examples, drawn stratified. */
  maxTest?: number;
  /**
   * Classes the model can predict: an IDX label at or above it is refused naming the labels file
   * and the label (without `classes.txt`, the class count would otherwise follow the largest label).
   */
  classLimit?: number;
  /** The model's input range and normalization; default: standardize with the training split's statistics. */
  preprocessing?: PreprocessingOptions;
}

/** The accepted spec forms and what each means, for help texts and error messages. */
export const DATASET_SPEC_FORMS: readonly { form: string; description: string }[] = [
  { form: 'idx:DIR', description: 'MNIST-style IDX files' },
  { form: 'folder:DIR', description: 'one subfolder of PNG/JPEG images per class, or a flat folder of unlabelled images (distillation)' },
  { form: 'sample', description: 'the bundled Fashion-MNIST subset' },
];

/** Fashion-MNIST's class names, in label order. */
export const FASHION_MNIST_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

const DEFAULT_SEED = 42;
const DEFAULT_VALIDATION_FRACTION = 0.1;
/** Share of a single image folder (no train/test subfolders) used as the test split. */
export const FOLDER_TEST_FRACTION = 0.2;
/** A file every copy of the bundled sample has: how the package root is recognized. */
const SAMPLE_MARKER = path.join('data', 'sample', 'classes.txt');

// Tags that give each random choice its own stream, so changing one cap does not reshuffle the rest.
const FOLDER_TEST_STREAM = 1;
const MAX_TRAIN_STREAM = 2;
const VALIDATION_STREAM = 3;
const MAX_TEST_STREAM = 4;

/**
 * Examples whose images are produced on demand, so only the selected ones are decoded, converted
 * and resized.
 */
interface ExampleSource {
  labels: Int32Array;
  /** Writes the images of `indices` one after another into `target` as floats in [0, 1]. */
  writeImages(indices: Int32Array, target: Float32Array, shape: [number, number, 1 | 3]): Promise<void>;
}

interface OpenedDataset {
  name: string;
  classNames: string[];
  train: ExampleSource;
  /** The test source and, when it shares the train source, the indices that belong to it. */
  test: ExampleSource;
  trainIndices: Int32Array;
  testIndices: Int32Array;
  warnings: string[];
  /** False for a flat folder of images (no class subfolders). */
  labelled: boolean;
  /** [height, width, channels] of the data as stored (the first training image for folders). */
  nativeShape(): Promise<[number, number, 1 | 3]>;
}

/**
 * Loads the dataset named by `spec` (`idx:DIR`, `folder:DIR` or `sample`), converted to
 * `options.inputShape` and normalized. Throws PasInputError for a bad spec, missing or corrupt
 * files, or bad options.
 */
export async function loadDataset(spec: string, options: LoadDatasetOptions): Promise<Dataset> {
  const imageShape = checkInputShape(options.inputShape);
  const validationFraction = options.validationFraction ?? DEFAULT_VALIDATION_FRACTION;
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new PasInputError(`validation fraction must be at least 0 and below 1, got ${validationFraction}`);
  }
  const seed = options.seed ?? DEFAULT_SEED;
  checkCap('maxTrain', options.maxTrain);
  checkCap('maxTest', options.maxTest);

  const opened = await openSpec(spec, seed, options.classLimit);
  const numClasses = opened.classNames.length;

  let trainPool = opened.trainIndices;
  if (options.maxTrain !== undefined && options.maxTrain < trainPool.length) {
    [trainPool] = stratifiedSplit(trainPool, opened.train.labels, options.maxTrain, mulberry32(deriveSeed(seed, MAX_TRAIN_STREAM)));
  }
  const validationCount = Math.round(trainPool.length * validationFraction);
  const [validationIndices, trainIndices] = stratifiedSplit(
    trainPool,
    opened.train.labels,
    validationCount,
    mulberry32(deriveSeed(seed, VALIDATION_STREAM)),
  );
  if (trainIndices.length === 0) {
    throw new PasInputError(`no training examples left after holding out ${validationCount} for validation`, spec);
  }
  let testIndices = opened.testIndices;
  if (options.maxTest !== undefined && options.maxTest < testIndices.length) {
    [testIndices] = stratifiedSplit(testIndices, opened.test.labels, options.maxTest, mulberry32(deriveSeed(seed, MAX_TEST_STREAM)));
  }

  const train = await materialize(opened.train, trainIndices, imageShape, numClasses);
  const validation = await materialize(opened.train, validationIndices, imageShape, numClasses);
  const test = await materialize(opened.test, testIndices, imageShape, numClasses);
  const { mean, std } = channelStatistics(train);
  const preprocessing = resolvePreprocessing(options.preprocessing, imageShape[2], () => ({ mean, std }));
  for (const split of [train, validation, test]) applyPreprocessing(split.images, preprocessing);

  return { name: opened.name, numClasses, classNames: opened.classNames, imageShape, mean, std, train, validation, test, warnings: opened.warnings, labelled: opened.labelled, preprocessing };
}

/** What a dataset holds, without converting its images: for fitting a builtin model to the data. */
export interface DatasetDescription {
  name: string;
  /** 0 for unlabelled data. */
  numClasses: number;
  labelled: boolean;
  /** [height, width, channels] as stored (a folder's first training image; channels 3 when it has colour). */
  imageShape: [number, number, 1 | 3];
}

/** Opens `spec` far enough to tell its class count and image shape. Throws PasInputError like `loadDataset`. */
export async function describeDataset(spec: string, seed = DEFAULT_SEED): Promise<DatasetDescription> {
  const opened = await openSpec(spec, seed);
  return { name: opened.name, numClasses: opened.classNames.length, labelled: opened.labelled, imageShape: await opened.nativeShape() };
}

/**
 * The augmentation to train with when the user asks for none in particular: shifts of up to
 * 2 pixels, plus horizontal flips except for digit datasets (a name with "mnist" but not
 * "fashion"), where a mirrored 2, 3 or 7 is not the same class.
 */
export function defaultAugmentation(dataset: Pick<Dataset, 'name'>): Augmentation {
  const isDigits = /mnist/i.test(dataset.name) && !/fashion/i.test(dataset.name);
  return { padCrop: 2, horizontalFlip: !isDigits };
}

/** The folder holding the bundled sample (`data/sample` in the package root). */
export function sampleDataDir(): string {
  return path.join(findPackageRoot(), 'data', 'sample');
}

/**
 * The root of this package: the nearest folder above this file with a package.json and the
 * bundled sample data. Recognized by what the engine needs from it, not by a package name (the
 * engine is the same whether the CLI, the extension or another package ships it). Walking up
 * works both from `src/engine/data` (tsx) and from the bundled `dist/`.
 */
export function findPackageRoot(startDir: string = __dirname): string {
  for (let dir = startDir; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, SAMPLE_MARKER))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the package root (a folder with package.json and ${SAMPLE_MARKER}) above ${startDir}`);
  }
}

async function openSpec(rawSpec: string, seed: number, classLimit?: number): Promise<OpenedDataset> {
  // Settings and command lines easily pick up stray spaces; a path never needs them at its ends.
  const spec = rawSpec.trim();
  if (spec === 'sample') {
    const opened = await openIdxDir(sampleDataDir(), classLimit);
    return { ...opened, name: 'fashion-mnist-sample' };
  }
  const colon = spec.indexOf(':');
  const kind = colon > 0 ? spec.slice(0, colon) : '';
  const dir = colon > 0 ? path.resolve(spec.slice(colon + 1)) : '';
  if (kind === 'idx' && spec.length > colon + 1) return openIdxDir(dir, classLimit);
  if (kind === 'folder' && spec.length > colon + 1) return openImageFolder(dir, seed);
  const forms = DATASET_SPEC_FORMS.map(({ form, description }) => `${form} (${description})`);
  throw new PasInputError(`unknown dataset '${spec}': use ${forms.slice(0, -1).join(', ')} or ${forms[forms.length - 1]}`);
}

async function openIdxDir(dir: string, classLimit?: number): Promise<OpenedDataset> {
  await checkIsDirectory(dir);
  const [trainImagesFile, trainLabelsFile, testImagesFile, testLabelsFile] = await allInOrder([
    findIdxFile(dir, 'train', 'images', 3),
    findIdxFile(dir, 'train', 'labels', 1),
    findIdxFile(dir, 't10k', 'images', 3),
    findIdxFile(dir, 't10k', 'labels', 1),
  ]);
  const namedClasses = await readClassNamesFile(dir);
  const labelLimit = namedClasses?.length ?? classLimit;
  const [trainData, testData] = await allInOrder([
    readIdxImagesAndLabels(trainImagesFile, trainLabelsFile, labelLimit),
    readIdxImagesAndLabels(testImagesFile, testLabelsFile, labelLimit),
  ] as const);
  if (trainData.images.height !== testData.images.height || trainData.images.width !== testData.images.width) {
    throw new PasInputError(
      `test images are ${testData.images.height}x${testData.images.width} but training images are ${trainData.images.height}x${trainData.images.width}`,
      testImagesFile,
    );
  }
  if (trainData.images.count === 0) throw new PasInputError('the training set holds no images', trainImagesFile);
  // Without test images every accuracy of the report would read 0.
  if (testData.images.count === 0) throw new PasInputError('the test set holds no images', testImagesFile);
  let classNames = namedClasses;
  if (!classNames) {
    const numClasses = Math.max(largestValue(trainData.labels.labels), largestValue(testData.labels.labels)) + 1;
    const looksLikeFashionMnist = /fashion/i.test(path.basename(dir)) && numClasses <= FASHION_MNIST_CLASS_NAMES.length;
    classNames = looksLikeFashionMnist
      ? FASHION_MNIST_CLASS_NAMES.slice(0, numClasses)
      : Array.from({ length: numClasses }, (_, i) => String(i));
  }
  if (classNames.length < 2) {
    throw new PasInputError(`the labels name only ${classNames.length} class; classification needs at least 2`, trainLabelsFile);
  }
  const toSource = ({ images, labels }: typeof trainData): ExampleSource => ({
    labels: Int32Array.from(labels.labels),
    async writeImages(indices, target, shape) {
      const pixelsPerImage = images.height * images.width;
      const imageSize = shape[0] * shape[1] * shape[2];
      indices.forEach((example, i) => {
        const pixels = images.pixels.subarray(example * pixelsPerImage, (example + 1) * pixelsPerImage);
        writeImageAsFloats(pixels, [images.height, images.width, 1], target, i * imageSize, shape);
      });
    },
  });
  return {
    name: path.basename(dir),
    classNames,
    train: toSource(trainData),
    test: toSource(testData),
    trainIndices: allIndices(trainData.images.count),
    testIndices: allIndices(testData.images.count),
    warnings: [],
    labelled: true,
    nativeShape: async () => [trainData.images.height, trainData.images.width, 1],
  };
}

/** Finds `<prefix>-<kind>-idx<rank>-ubyte` in its accepted spellings, with or without `.gz`. */
async function findIdxFile(dir: string, prefix: string, kind: string, rank: number): Promise<string> {
  const baseNames = [`${prefix}-${kind}-idx${rank}-ubyte`, `${prefix}-${kind}.idx${rank}-ubyte`];
  for (const baseName of baseNames) {
    for (const name of [baseName, `${baseName}.gz`]) {
      const file = path.join(dir, name);
      if (await isFile(file)) return file;
    }
  }
  throw new PasInputError(`missing ${prefix === 't10k' ? 'test' : 'training'} ${kind}: expected ${baseNames[0]} or ${baseNames[0]}.gz`, dir);
}

/** Class names from `classes.txt` (one per line, blank lines ignored), or undefined without one. */
async function readClassNamesFile(dir: string): Promise<string[] | undefined> {
  const file = path.join(dir, 'classes.txt');
  if (!(await isFile(file))) return undefined;
  const names = (await fs.readFile(file, 'utf8'))
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length < 2) throw new PasInputError(`names ${names.length} class(es); classification needs at least 2`, file);
  return names;
}

async function openImageFolder(dir: string, seed: number): Promise<OpenedDataset> {
  await checkIsDirectory(dir);
  const trainDir = path.join(dir, 'train');
  const testDir = path.join(dir, 'test');
  const warnings: string[] = [];
  const warnAboutSkipped = (skipped: string[], folder: string) => {
    if (skipped.length > 0) warnings.push(`${folder}: skipped ${skipped.length} file(s) that are not PNG or JPEG: ${describeFiles(skipped, folder)}`);
  };

  if (await isDirectory(trainDir)) {
    const trainListing = await listImageFolder(trainDir);
    warnAboutSkipped(trainListing.skipped, trainDir);
    const train = folderSource(trainListing.files.map((entry) => entry.file), trainListing.files.map((entry) => entry.classIndex));
    let test: ExampleSource;
    let testIndices: Int32Array;
    let trainIndices = allIndices(trainListing.files.length);
    if (await isDirectory(testDir)) {
      const testListing = await listImageFolder(testDir, trainListing.classNames);
      warnAboutSkipped(testListing.skipped, testDir);
      test = folderSource(testListing.files.map((entry) => entry.file), testListing.files.map((entry) => entry.classIndex));
      testIndices = allIndices(testListing.files.length);
    } else {
      warnings.push(`${dir}: no test folder; using ${FOLDER_TEST_FRACTION * 100}% of ${trainDir} as the test split`);
      test = train;
      [testIndices, trainIndices] = splitOffTest(trainIndices, train.labels, seed);
    }
    const firstFile = trainListing.files[0].file;
    return { name: path.basename(dir), classNames: trainListing.classNames, train, test, trainIndices, testIndices, warnings, labelled: true, nativeShape: () => shapeOfImage(firstFile) };
  }

  const flat = await openFlatImageFolder(dir, seed, warnAboutSkipped, warnings);
  if (flat) return flat;
  const listing = await listImageFolder(dir);
  warnAboutSkipped(listing.skipped, dir);
  const source = folderSource(listing.files.map((entry) => entry.file), listing.files.map((entry) => entry.classIndex));
  const [testIndices, trainIndices] = splitOffTest(allIndices(listing.files.length), source.labels, seed);
  return { name: path.basename(dir), classNames: listing.classNames, train: source, test: source, trainIndices, testIndices, warnings, labelled: true, nativeShape: () => shapeOfImage(listing.files[0].file) };
}

/**
 * A folder that holds images but no subfolders: unlabelled data for distillation. Every label is
 * 0 (the splits still need one) and there are no class names. Undefined for any other folder.
 */
async function openFlatImageFolder(
  dir: string,
  seed: number,
  warnAboutSkipped: (skipped: string[], folder: string) => void,
  warnings: string[],
): Promise<OpenedDataset | undefined> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const visible = entries.filter((entry) => !entry.name.startsWith('.'));
  for (const entry of visible) if (await isDirectory(path.join(dir, entry.name))) return undefined;
  const skipped: string[] = [];
  const files = await findImageFiles(dir, skipped);
  if (files.length === 0) return undefined;
  warnAboutSkipped(skipped, dir);
  const source = folderSource(files, files.map(() => 0));
  const [testIndices, trainIndices] = splitOffTest(allIndices(files.length), source.labels, seed);
  if (testIndices.length === 0 || trainIndices.length < 2) {
    throw new PasInputError(`holds ${files.length} image(s): too few to split into training and test images`, dir);
  }
  return { name: path.basename(dir), classNames: [], train: source, test: source, trainIndices, testIndices, warnings, labelled: false, nativeShape: () => shapeOfImage(files[0]) };
}

/** [height, width, channels] of an image file: 3 channels when any pixel has colour, else 1. */
async function shapeOfImage(file: string): Promise<[number, number, 1 | 3]> {
  const image = await decodeImageFile(file);
  const { rgba } = image;
  let colour = false;
  for (let i = 0; i < rgba.length && !colour; i += 4) colour = rgba[i] !== rgba[i + 1] || rgba[i + 1] !== rgba[i + 2];
  return [image.height, image.width, colour ? 3 : 1];
}

function largestValue(values: Uint8Array): number {
  // A loop, not Math.max(...values): spreading 60000 arguments can overflow the stack.
  let largest = 0;
  for (const value of values) if (value > largest) largest = value;
  return largest;
}

function splitOffTest(indices: Int32Array, labels: Int32Array, seed: number): [test: Int32Array, train: Int32Array] {
  const testCount = Math.round(indices.length * FOLDER_TEST_FRACTION);
  return stratifiedSplit(indices, labels, testCount, mulberry32(deriveSeed(seed, FOLDER_TEST_STREAM)));
}

function folderSource(files: string[], classIndices: number[]): ExampleSource {
  return {
    labels: Int32Array.from(classIndices),
    writeImages: (indices, target, shape) => loadImagesInto(Array.from(indices, (i) => files[i]), target, shape),
  };
}

async function materialize(source: ExampleSource, indices: Int32Array, imageShape: [number, number, 1 | 3], numClasses: number): Promise<Split> {
  const images = new Float32Array(indices.length * imageShape[0] * imageShape[1] * imageShape[2]);
  await source.writeImages(indices, images, imageShape);
  const labels = Int32Array.from(indices, (i) => source.labels[i]);
  return { images, labels, count: indices.length, imageShape: [...imageShape], numClasses };
}

/** Per-channel mean and standard deviation over all pixels of a split. */
export function channelStatistics(split: Split): { mean: number[]; std: number[] } {
  const channels = split.imageShape[2];
  const sums = new Float64Array(channels);
  const squares = new Float64Array(channels);
  const { images } = split;
  for (let i = 0; i < images.length; i++) {
    const value = images[i];
    sums[i % channels] += value;
    squares[i % channels] += value * value;
  }
  const perChannel = images.length / channels;
  const mean = Array.from(sums, (sum) => (perChannel > 0 ? sum / perChannel : 0));
  const std = Array.from(squares, (square, c) => {
    const variance = perChannel > 0 ? square / perChannel - mean[c] * mean[c] : 0;
    // A constant channel would divide by zero; leave it centred but unscaled.
    return variance > 1e-12 ? Math.sqrt(variance) : 1;
  });
  return { mean, std };
}

function checkInputShape(shape: [number, number, number]): [number, number, 1 | 3] {
  const valid = Array.isArray(shape) && shape.length === 3 && shape.every((dim) => Number.isInteger(dim) && dim > 0);
  if (!valid) throw new PasInputError(`input shape must be [height, width, channels] of positive integers, got ${JSON.stringify(shape)}`);
  const [height, width, channels] = shape;
  if (channels !== 1 && channels !== 3) {
    throw new PasInputError(`the model expects ${channels} input channels; datasets supply 1 (grayscale) or 3 (RGB)`);
  }
  return [height, width, channels];
}

function checkCap(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw new PasInputError(`${name} must be a positive integer, got ${value}`);
  }
}

async function checkIsDirectory(dir: string): Promise<void> {
  if (!(await isDirectory(dir))) {
    throw new PasInputError((await exists(dir)) ? 'not a folder' : 'the dataset folder does not exist', dir);
  }
}

async function isDirectory(file: string): Promise<boolean> {
  return fs.stat(file).then((stats) => stats.isDirectory(), () => false);
}

async function isFile(file: string): Promise<boolean> {
  return fs.stat(file).then((stats) => stats.isFile(), () => false);
}

async function exists(file: string): Promise<boolean> {
  return fs.stat(file).then(() => true, () => false);
}
