/**
 * The model's own input preprocessing: the value range it was trained on and, optionally, a
 * per-channel mean/std normalization after it. Fine-tuning a pretrained model on another scale
 * destroys what it learned, so the user states what the model expects:
 *
 * - `--input-range 0,1`   pixels / 255                      (the Keras `rescale=1/255` convention)
 * - `--input-range -1,1`  pixels / 127.5 - 1                (Keras MobileNet/EfficientNet-family `preprocess_input`)
 * - `--input-range 0,255` raw pixel values                  (models with a Rescaling layer inside, Caffe-style models)
 * - `--normalize MEAN,STD` then (value - MEAN[c]) / STD[c], one value for all channels or one per
 *   channel (`0.485,0.456,0.406,0.229,0.224,0.225`: the three means, then the three stds).
 *
 * Without either option the data is standardized with the training split's own per-channel mean
 * and std (what builtins, trained from scratch here, expect). Preprocessing layers inside the
 * model (Rescaling, Normalization) run as part of the model, untouched.
 */
import { PasInputError } from '../errors';

export const INPUT_RANGES = { '0,1': [0, 1], '-1,1': [-1, 1], '0,255': [0, 255] } as const satisfies Record<string, readonly [number, number]>;
export type InputRange = keyof typeof INPUT_RANGES;

/** What the user asked for (both optional). */
export interface PreprocessingOptions {
  inputRange?: InputRange;
  normalize?: { mean: number[]; std: number[] };
}

/** What was applied, as report.json records it: value = ((pixel / 255) * (hi - lo) + lo - mean[c]) / std[c]. */
export interface AppliedPreprocessing {
  /** `options`: the user's --input-range/--normalize; `data-statistics`: standardized with the training split's mean and std. */
  source: 'options' | 'data-statistics';
  inputRange: InputRange;
  mean: number[];
  std: number[];
}

export function isInputRange(value: string): value is InputRange {
  return Object.prototype.hasOwnProperty.call(INPUT_RANGES, value);
}

/** Parses `--normalize`: `MEAN,STD` or `M1,..,Mc,S1,..,Sc`. Throws PasInputError on anything else. */
export function parseNormalize(text: string): { mean: number[]; std: number[] } {
  const values = text.split(',').map((part) => Number(part.trim()));
  if (values.length < 2 || values.length % 2 !== 0 || values.some((v) => !Number.isFinite(v))) {
    throw new PasInputError(`--normalize expects MEAN,STD or one mean per channel then one std per channel (e.g. 0.485,0.456,0.406,0.229,0.224,0.225), got '${text}'`);
  }
  const half = values.length / 2;
  const std = values.slice(half);
  if (std.some((v) => v <= 0)) throw new PasInputError(`--normalize: every STD must be positive, got '${text}'`);
  return { mean: values.slice(0, half), std };
}

/**
 * The preprocessing to apply for a model with `channels` input channels. `dataStatistics` (the
 * training split's mean and std of pixels / 255) are used only when the user gave no option.
 */
export function resolvePreprocessing(options: PreprocessingOptions | undefined, channels: number, dataStatistics: () => { mean: number[]; std: number[] }): AppliedPreprocessing {
  if (!options?.inputRange && !options?.normalize) {
    return { source: 'data-statistics', inputRange: '0,1', ...dataStatistics() };
  }
  const inputRange = options.inputRange ?? '0,1';
  if (!isInputRange(inputRange)) throw new PasInputError(`--input-range must be one of ${Object.keys(INPUT_RANGES).join(' | ')}, got '${inputRange}'`);
  const perChannel = (values: number[]) => {
    if (values.length === 1) return Array<number>(channels).fill(values[0]);
    if (values.length !== channels) {
      throw new PasInputError(`--normalize gives ${values.length} values per statistic but the model has ${channels} input channel(s): give 1 or ${channels}`);
    }
    return values;
  };
  const mean = options.normalize ? perChannel(options.normalize.mean) : Array<number>(channels).fill(0);
  const std = options.normalize ? perChannel(options.normalize.std) : Array<number>(channels).fill(1);
  return { source: 'options', inputRange, mean, std };
}

/** Applies `preprocessing` in place to images holding pixels / 255 (values in [0, 1]), channels last. */
export function applyPreprocessing(images: Float32Array, preprocessing: AppliedPreprocessing): void {
  const [low, high] = INPUT_RANGES[preprocessing.inputRange];
  const channels = preprocessing.mean.length;
  const scale = preprocessing.std.map((s) => (high - low) / s);
  const offset = preprocessing.mean.map((m, c) => (low - m) / preprocessing.std[c]);
  for (let i = 0; i < images.length; i++) {
    const c = i % channels;
    images[i] = images[i] * scale[c] + offset[c];
  }
}
