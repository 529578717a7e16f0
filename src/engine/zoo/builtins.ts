import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';
import { buildPlainCnn, buildResidualCnn } from './cnn';
import { buildRepVgg, RepVggVariant } from './repvgg';

export const BUILTIN_PREFIX = 'builtin:';

export interface BuiltinOptions {
  inputShape?: [number, number, number];
  numClasses?: number;
  widthMultiplier?: number;
  seed?: number;
}

interface BuiltinSpec {
  description: string;
  defaults: Required<Omit<BuiltinOptions, 'seed'>>;
  build(options: Required<Omit<BuiltinOptions, 'seed'>> & { seed?: number }): tf.LayersModel;
}

const repvgg = (variant: RepVggVariant): BuiltinSpec => ({
  description: `RepVGG-${variant} (training-time multi-branch form)`,
  defaults: { inputShape: [224, 224, 3], numClasses: 1000, widthMultiplier: 1 },
  build: (o) => buildRepVgg({ variant, ...o }),
});

/**
 * The built-in models. `default` is the small RepVGG that the demo, the extension's
 * "Try PaS on a Sample Model" and the tests search on the bundled Fashion-MNIST sample: RepVGG-A0
 * at a quarter width with [1, 2, 2, 2, 1] blocks, sized so that a whole PaS run fits a few
 * minutes on two CPU cores.
 */
export const BUILTINS: Record<string, BuiltinSpec> = {
  default: {
    description: 'small RepVGG-A0 (x0.25 width, [1,2,2,2,1] blocks) for 28x28x1 inputs',
    defaults: { inputShape: [28, 28, 1], numClasses: 10, widthMultiplier: 0.25 },
    build: (o) => buildRepVgg({ variant: 'A0', blocksPerStage: [1, 2, 2, 2, 1], name: 'repvgg-default', ...o }),
  },
  'repvgg-a0': repvgg('A0'),
  'repvgg-a1': repvgg('A1'),
  'repvgg-a2': repvgg('A2'),
  'repvgg-b0': repvgg('B0'),
  'repvgg-b1': repvgg('B1'),
  'plain-cnn': {
    description: 'plain conv-BN-ReLU chain (the throughput reference net)',
    defaults: { inputShape: [28, 28, 1], numClasses: 10, widthMultiplier: 1 },
    build: (o) => buildPlainCnn(o),
  },
  'residual-cnn': {
    description: 'small residual CNN with identity shortcuts (coupled channels)',
    defaults: { inputShape: [28, 28, 1], numClasses: 10, widthMultiplier: 1 },
    build: (o) => buildResidualCnn(o),
  },
};

export function isBuiltinSpec(spec: string): boolean {
  return spec.startsWith(BUILTIN_PREFIX);
}

/** Builds `builtin:NAME` with the given options over the model's defaults. */
export function buildBuiltin(spec: string, options: BuiltinOptions = {}): tf.LayersModel {
  const name = spec.slice(BUILTIN_PREFIX.length);
  const builtin = BUILTINS[name];
  if (!builtin) {
    throw new PasInputError(`unknown builtin model '${name}'; available: ${Object.keys(BUILTINS).map((n) => BUILTIN_PREFIX + n).join(', ')}`, spec);
  }
  const merged = {
    inputShape: options.inputShape ?? builtin.defaults.inputShape,
    numClasses: options.numClasses ?? builtin.defaults.numClasses,
    widthMultiplier: options.widthMultiplier ?? builtin.defaults.widthMultiplier,
    seed: options.seed,
  };
  return builtin.build(merged);
}
