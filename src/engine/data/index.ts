/** Datasets for training and evaluation: loading (`loadDataset`) and batching (`batches`). */
export {
  channelStatistics,
  DATASET_SPEC_FORMS,
  defaultAugmentation,
  describeDataset,
  FASHION_MNIST_CLASS_NAMES,
  FOLDER_TEST_FRACTION,
  findPackageRoot,
  loadDataset,
  sampleDataDir,
} from './dataset';
export type { Dataset, DatasetDescription, LoadDatasetOptions } from './dataset';
export { INPUT_RANGES, isInputRange, parseNormalize } from './preprocessing';
export type { AppliedPreprocessing, InputRange, PreprocessingOptions } from './preprocessing';
export { batchCount, batches } from './batches';
export type { Augmentation, Batch, BatchOptions, Split } from './batches';
export { deriveSeed, mulberry32, randomInt, shuffledIndices, shuffleInPlace } from './random';
export type { Random } from './random';
