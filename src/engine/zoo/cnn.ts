import * as tf from '@tensorflow/tfjs';
import { BN_MOMENTUM } from './constants';

export interface SimpleCnnOptions {
  inputShape: [number, number, number];
  numClasses: number;
  widthMultiplier?: number;
  name?: string;
}

const scaled = (width: number, multiplier = 1) => Math.max(1, Math.round(width * multiplier));

function convBnRelu(x: tf.SymbolicTensor, filters: number, stride: number, name: string, relu = true): tf.SymbolicTensor {
  const conv = tf.layers
    .conv2d({ filters, kernelSize: 3, strides: stride, padding: 'same', useBias: false, name: `${name}_conv` })
    .apply(x) as tf.SymbolicTensor;
  const bn = tf.layers.batchNormalization({ name: `${name}_bn`, momentum: BN_MOMENTUM }).apply(conv) as tf.SymbolicTensor;
  return relu ? (tf.layers.reLU({ name: `${name}_relu` }).apply(bn) as tf.SymbolicTensor) : bn;
}

/**
 * A plain conv-BN-ReLU chain (the throughput reference net of the project notes at multiplier 1):
 * (16,1) (32,2) (32,1) (64,2) (64,1) (128,2), global average pool and the classifier.
 */
export function buildPlainCnn(options: SimpleCnnOptions): tf.LayersModel {
  const m = options.widthMultiplier;
  const input = tf.input({ shape: options.inputShape, name: 'input' });
  let x: tf.SymbolicTensor = input;
  const plan: Array<[number, number]> = [[16, 1], [32, 2], [32, 1], [64, 2], [64, 1], [128, 2]];
  plan.forEach(([filters, stride], i) => {
    x = convBnRelu(x, scaled(filters, m), stride, `conv${i + 1}`);
  });
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: options.numClasses, name: 'classifier' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: options.name ?? 'plain-cnn' });
}

/**
 * A small residual CNN with identity shortcuts, so that channels joined by Add must share one
 * mask; it also has a depthwise conv, max pooling and a Flatten -> Dense head.
 */
export function buildResidualCnn(options: SimpleCnnOptions): tf.LayersModel {
  const m = options.widthMultiplier;
  const input = tf.input({ shape: options.inputShape, name: 'input' });
  const w1 = scaled(16, m);
  const w2 = scaled(32, m);
  let x = convBnRelu(input, w1, 1, 'stem');
  x = residualBlock(x, w1, 'res1');
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }).apply(x) as tf.SymbolicTensor;
  x = convBnRelu(x, w2, 1, 'widen');
  x = residualBlock(x, w2, 'res2');
  const dw = tf.layers
    .depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'dw_conv' })
    .apply(x) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ name: 'dw_bn', momentum: BN_MOMENTUM }).apply(dw) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'dw_relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.averagePooling2d({ poolSize: 2, name: 'pool2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: scaled(32, m), activation: 'relu', name: 'fc1' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.1, name: 'drop' }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: options.numClasses, name: 'classifier' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: options.name ?? 'residual-cnn' });
}

function residualBlock(x: tf.SymbolicTensor, width: number, name: string): tf.SymbolicTensor {
  const a = convBnRelu(x, width, 1, `${name}_a`);
  const b = convBnRelu(a, width, 1, `${name}_b`, false);
  const sum = tf.layers.add({ name: `${name}_add` }).apply([x, b]) as tf.SymbolicTensor;
  return tf.layers.reLU({ name: `${name}_relu` }).apply(sum) as tf.SymbolicTensor;
}
