/**
 * Small models of the architecture families real Keras-converted models come in, built from stock
 * tfjs layers (functional API) in the shapes the Keras applications write them: DenseNet
 * concatenation, Inception branches, EfficientNet MBConv with squeeze-excitation, Xception
 * separable convs, ResNet-50 bottlenecks, a U-Net, RepVGG blocks written in Keras, MobileNetV1,
 * a MobileNetV3 block, a model with layers PaS does not know, and the activation layers.
 *
 * Every weight is seeded random and every BatchNormalization gets non-default statistics, so an
 * equivalence test fails when a transform mishandles any of them. Sizes are tiny (16x16x3 or
 * smaller): these run in the unit tests. Not a test file.
 */
import * as tf from '@tensorflow/tfjs';
import { mulberry32, type Random } from '../../src/engine/data/random';

type T = tf.SymbolicTensor;

/** Classifier outputs: the bundled sample data (Fashion-MNIST) has 10 classes. */
export const CLASSES = 10;

export interface Family {
  /** Short id, used in test titles and fixture folder names. */
  name: string;
  /** What the model stands for, with the layer patterns it exercises. */
  description: string;
  /** A [batch, classes] classifier (searchable); false for per-pixel outputs. */
  classifier: boolean;
  /** Layer classes in the model that the PaS registry is not expected to know. */
  unknownClasses: string[];
  /** Why some BatchNormalization cannot be folded at deploy (it precedes its conv, not follows it). */
  keepsBatchNorm?: string;
  build(seed: number): tf.LayersModel;
}

/** A uniform number in [lo, hi). */
const uniform = (random: Random, lo: number, hi: number) => lo + (hi - lo) * random();

/** The short name of a weight ("conv1/kernel" -> "kernel"). */
function shortName(originalName: string): string {
  const slash = originalName.lastIndexOf('/');
  return (slash >= 0 ? originalName.slice(slash + 1) : originalName).replace(/_\d+$/, '').replace(/:\d+$/, '');
}

/**
 * Sets every weight of the model to seeded random values: kernels U(-a, a) with a = sqrt(3/fan_in)
 * (unit gain: activations keep their scale through the depth of these small models), biases
 * U(-0.2, 0.2), BN gamma U(0.6, 1.4), beta U(-0.2, 0.2), moving mean U(-0.3, 0.3), moving
 * variance U(0.5, 1.5), PReLU alpha U(0.05, 0.3).
 */
export function randomizeWeights(model: tf.LayersModel, seed: number): void {
  const random = mulberry32(seed);
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((w) => {
      const shape = w.shape as number[];
      const size = shape.reduce((a, b) => a * b, 1);
      const name = shortName(w.originalName);
      let lo = -0.2;
      let hi = 0.2;
      if (/kernel$/.test(name)) {
        // Conv2DTranspose kernels are [kh, kw, out, in]: their fan-in is kh * kw * in.
        const fanIn = layer.getClassName() === 'Conv2DTranspose' ? (size / shape[2]) : size / shape[shape.length - 1];
        hi = Math.sqrt(3 / Math.max(1, fanIn));
        lo = -hi;
      } else if (name === 'gamma') [lo, hi] = [0.6, 1.4];
      else if (name === 'moving_mean') [lo, hi] = [-0.3, 0.3];
      else if (name === 'moving_variance') [lo, hi] = [0.5, 1.5];
      else if (name === 'alpha') [lo, hi] = [0.05, 0.3];
      return tf.tensor(Float32Array.from({ length: size }, () => uniform(random, lo, hi)), shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

// ---- building blocks (named layers, so that test messages name what a user would see) ------

interface ConvOptions {
  strides?: number;
  padding?: 'same' | 'valid';
  useBias?: boolean;
  dilation?: number;
  activation?: string;
}

function conv(x: T, name: string, filters: number, kernel: number | [number, number], o: ConvOptions = {}): T {
  return tf.layers
    .conv2d({ name, filters, kernelSize: kernel, strides: o.strides ?? 1, padding: o.padding ?? 'same', useBias: o.useBias ?? false, dilationRate: o.dilation ?? 1, activation: (o.activation ?? 'linear') as any })
    .apply(x) as T;
}

function bn(x: T, name: string, options: { scale?: boolean; center?: boolean } = {}): T {
  return tf.layers.batchNormalization({ name, epsilon: 1e-3, scale: options.scale ?? true, center: options.center ?? true }).apply(x) as T;
}

function act(x: T, name: string, activation: string): T {
  return tf.layers.activation({ name, activation: activation as any }).apply(x) as T;
}

function relu(x: T, name: string, maxValue?: number): T {
  return tf.layers.reLU({ name, maxValue }).apply(x) as T;
}

/** conv -> BN -> activation, the unit every Keras application is made of. */
function convBnAct(x: T, name: string, filters: number, kernel: number | [number, number], o: ConvOptions & { act?: string; bnScale?: boolean } = {}): T {
  const y = bn(conv(x, `${name}_conv`, filters, kernel, { ...o, activation: 'linear' }), `${name}_bn`, { scale: o.bnScale });
  return act(y, `${name}_act`, o.act ?? 'relu');
}

function concat(xs: T[], name: string): T {
  return tf.layers.concatenate({ name, axis: -1 }).apply(xs) as T;
}

function add(xs: T[], name: string): T {
  return tf.layers.add({ name }).apply(xs) as T;
}

function input(shape: number[]): T {
  return tf.input({ shape, name: 'input' });
}

function classifierHead(x: T, classes: number, prefix = 'head'): T {
  const pooled = tf.layers.globalAveragePooling2d({ name: `${prefix}_gap` }).apply(x) as T;
  return tf.layers.dense({ name: `${prefix}_dense`, units: classes }).apply(pooled) as T;
}

function finish(inputs: T, outputs: T, name: string, seed: number): tf.LayersModel {
  const model = tf.model({ inputs, outputs, name });
  randomizeWeights(model, seed);
  return model;
}

// ---- the families ------------------------------------------------------------------------

/** DenseNet-121 style: pre-activation BN-ReLU-conv units whose outputs are concatenated onto a growing map. */
function buildDenseNet(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = convBnAct(x0, 'stem', 8, 3, { strides: 2 });
  const denseBlock = (h: T, prefix: string, layers: number, growth: number): T => {
    for (let i = 0; i < layers; i++) {
      let y = act(bn(h, `${prefix}_${i}_bn1`), `${prefix}_${i}_relu1`, 'relu');
      y = conv(y, `${prefix}_${i}_conv1`, 2 * growth, 1);
      y = act(bn(y, `${prefix}_${i}_bn2`), `${prefix}_${i}_relu2`, 'relu');
      y = conv(y, `${prefix}_${i}_conv2`, growth, 3);
      h = concat([h, y], `${prefix}_${i}_concat`);
    }
    return h;
  };
  x = denseBlock(x, 'block1', 2, 4);
  // Transition: BN-ReLU-conv1x1 halving the channels, then 2x2 average pooling.
  x = act(bn(x, 'pool1_bn'), 'pool1_relu', 'relu');
  x = conv(x, 'pool1_conv', 8, 1);
  x = tf.layers.averagePooling2d({ name: 'pool1_pool', poolSize: 2, strides: 2 }).apply(x) as T;
  x = denseBlock(x, 'block2', 2, 4);
  x = act(bn(x, 'final_bn'), 'final_relu', 'relu');
  return finish(x0, classifierHead(x, CLASSES), 'densenet_style', seed);
}

/** InceptionV3 style: parallel 1x1 / 1x7-7x1 / double 3x3 / pooling branches concatenated; BN without scale. */
function buildInception(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  const unit = (h: T, name: string, filters: number, kernel: number | [number, number], o: ConvOptions = {}) => convBnAct(h, name, filters, kernel, { ...o, bnScale: false });
  let x = unit(x0, 'stem', 8, 3, { strides: 2, padding: 'valid' }); // 7x7
  // mixed0: the four branches of InceptionV3's module C (17x17 grid) at toy width.
  const b1 = unit(x, 'mixed0_b1', 4, 1);
  let b7 = unit(x, 'mixed0_b7a', 4, 1);
  b7 = unit(b7, 'mixed0_b7b', 4, [1, 7]);
  b7 = unit(b7, 'mixed0_b7c', 6, [7, 1]);
  let b3 = unit(x, 'mixed0_b3a', 4, 1);
  b3 = unit(b3, 'mixed0_b3b', 4, 3);
  b3 = unit(b3, 'mixed0_b3c', 4, 3);
  let bp = tf.layers.averagePooling2d({ name: 'mixed0_pool', poolSize: 3, strides: 1, padding: 'same' }).apply(x) as T;
  bp = unit(bp, 'mixed0_bp', 4, 1);
  x = concat([b1, b7, b3, bp], 'mixed0');
  // mixed1: a grid reduction (stride-2 'valid' conv next to stride-2 max pooling).
  const r3 = unit(x, 'mixed1_b3', 6, 3, { strides: 2, padding: 'valid' });
  let r7 = unit(x, 'mixed1_b7a', 4, 1);
  r7 = unit(r7, 'mixed1_b7b', 4, 3, { strides: 2, padding: 'valid' });
  const rp = tf.layers.maxPooling2d({ name: 'mixed1_pool', poolSize: 3, strides: 2 }).apply(x) as T;
  x = concat([r3, r7, rp], 'mixed1');
  return finish(x0, classifierHead(x, CLASSES), 'inception_style', seed);
}

/** Squeeze-excitation as Keras EfficientNet writes it: GAP -> Reshape(1,1,C) -> conv -> conv(sigmoid) -> Multiply. */
function squeezeExcite(x: T, name: string, channels: number, squeezed: number, innerAct: string, gate: string): T {
  let s = tf.layers.globalAveragePooling2d({ name: `${name}_squeeze` }).apply(x) as T;
  s = tf.layers.reshape({ name: `${name}_reshape`, targetShape: [1, 1, channels] }).apply(s) as T;
  s = conv(s, `${name}_reduce`, squeezed, 1, { useBias: true, activation: innerAct });
  s = conv(s, `${name}_expand`, channels, 1, { useBias: true, activation: gate });
  return tf.layers.multiply({ name: `${name}_excite` }).apply([x, s]) as T;
}

/** EfficientNet-B0 style: MBConv (expand 1x1, depthwise, SE, project 1x1, identity skip) with swish. */
function buildEfficientNet(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = convBnAct(x0, 'stem', 8, 3, { strides: 2, act: 'swish' }); // 8x8x8
  const mbconv = (h: T, name: string, inC: number, outC: number, expand: number, kernel: number, strides: number): T => {
    const mid = inC * expand;
    let y = expand === 1 ? h : convBnAct(h, `${name}_expand`, mid, 1, { act: 'swish' });
    y = tf.layers.depthwiseConv2d({ name: `${name}_dwconv`, kernelSize: kernel, strides, padding: 'same', useBias: false }).apply(y) as T;
    y = act(bn(y, `${name}_bn`), `${name}_activation`, 'swish');
    y = squeezeExcite(y, `${name}_se`, mid, Math.max(1, Math.floor(inC / 4)), 'swish', 'sigmoid');
    y = bn(conv(y, `${name}_project_conv`, outC, 1), `${name}_project_bn`);
    if (strides === 1 && inC === outC) {
      y = tf.layers.dropout({ name: `${name}_drop`, rate: 0.2 }).apply(y) as T;
      y = add([y, h], `${name}_add`);
    }
    return y;
  };
  x = mbconv(x, 'block1a', 8, 8, 1, 3, 1);
  x = mbconv(x, 'block2a', 8, 12, 4, 5, 2);
  x = mbconv(x, 'block2b', 12, 12, 4, 3, 1);
  x = convBnAct(x, 'top', 24, 1, { act: 'swish' });
  x = tf.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as T;
  x = tf.layers.dropout({ name: 'top_dropout', rate: 0.2 }).apply(x) as T;
  const out = tf.layers.dense({ name: 'predictions', units: CLASSES }).apply(x) as T;
  return finish(x0, out, 'efficientnet_style', seed);
}

function separable(x: T, name: string, filters: number, o: { strides?: number; useBias?: boolean; depthMultiplier?: number } = {}): T {
  return tf.layers
    .separableConv2d({ name, filters, kernelSize: 3, padding: 'same', strides: o.strides ?? 1, useBias: o.useBias ?? false, depthMultiplier: o.depthMultiplier ?? 1 })
    .apply(x) as T;
}

/** Xception style: SeparableConv2D-BN pairs, strided 1x1 conv shortcuts, max pooling with 'same' padding, identity middle flow. */
function buildXception(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = convBnAct(x0, 'block1_conv1', 8, 3, { strides: 2, padding: 'valid' }); // 7x7
  x = convBnAct(x, 'block1_conv2', 8, 3); // 7x7
  // Entry flow block: separable convs, 'same' max pooling, a strided 1x1 conv + BN shortcut.
  let residual = bn(conv(x, 'block2_shortcut', 16, 1, { strides: 2 }), 'block2_shortcut_bn');
  let y = act(bn(separable(x, 'block2_sepconv1', 12), 'block2_sepconv1_bn'), 'block2_sepconv1_act', 'relu');
  y = bn(separable(y, 'block2_sepconv2', 16), 'block2_sepconv2_bn');
  y = tf.layers.maxPooling2d({ name: 'block2_pool', poolSize: 3, strides: 2, padding: 'same' }).apply(y) as T; // 4x4
  x = add([y, residual], 'block2_add');
  // Middle flow block: relu -> separable -> BN, three times, plus the identity (one with depth_multiplier 2).
  residual = x;
  y = act(x, 'block3_act1', 'relu');
  y = bn(separable(y, 'block3_sepconv1', 16), 'block3_sepconv1_bn');
  y = act(y, 'block3_act2', 'relu');
  y = bn(separable(y, 'block3_sepconv2', 16, { depthMultiplier: 2 }), 'block3_sepconv2_bn');
  x = add([y, residual], 'block3_add');
  // Exit flow: a separable conv with a bias, then classifier.
  x = act(bn(separable(x, 'block4_sepconv1', 24, { useBias: true }), 'block4_sepconv1_bn'), 'block4_sepconv1_act', 'relu');
  return finish(x0, classifierHead(x, CLASSES), 'xception_style', seed);
}

/** ResNet-50 (Keras applications) style: convs WITH bias followed by BN, bottleneck conv and identity blocks. */
function buildResNet50(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = tf.layers.zeroPadding2d({ name: 'conv1_pad', padding: [[3, 3], [3, 3]] }).apply(x0) as T;
  x = convBnAct(x, 'conv1', 8, 7, { strides: 2, padding: 'valid', useBias: true }); // 8x8
  x = tf.layers.zeroPadding2d({ name: 'pool1_pad', padding: [[1, 1], [1, 1]] }).apply(x) as T;
  x = tf.layers.maxPooling2d({ name: 'pool1_pool', poolSize: 3, strides: 2 }).apply(x) as T; // 4x4
  const block = (h: T, name: string, filters: number, strides: number, convShortcut: boolean): T => {
    const shortcut = convShortcut ? bn(conv(h, `${name}_0_conv`, 4 * filters, 1, { strides, useBias: true }), `${name}_0_bn`) : h;
    let y = convBnAct(h, `${name}_1`, filters, 1, { strides, useBias: true });
    y = convBnAct(y, `${name}_2`, filters, 3, { useBias: true });
    y = bn(conv(y, `${name}_3_conv`, 4 * filters, 1, { useBias: true }), `${name}_3_bn`);
    return act(add([shortcut, y], `${name}_add`), `${name}_out`, 'relu');
  };
  x = block(x, 'conv2_block1', 4, 1, true);
  x = block(x, 'conv2_block2', 4, 1, false);
  x = block(x, 'conv3_block1', 6, 2, true); // 2x2
  x = block(x, 'conv3_block2', 6, 1, false);
  return finish(x0, classifierHead(x, CLASSES), 'resnet50_style', seed);
}

/** U-Net style: encoder, Conv2DTranspose and UpSampling2D decoders with Concatenate skips, Cropping2D, a per-pixel output. */
function buildUNet(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  const e1 = convBnAct(convBnAct(x0, 'enc1a', 6, 3), 'enc1b', 6, 3); // 16x16x6
  let x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(e1) as T;
  const e2 = convBnAct(x, 'enc2', 8, 3); // 8x8x8
  x = tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }).apply(e2) as T;
  x = convBnAct(x, 'bottom', 12, 3); // 4x4x12
  // Decoder 1: a learned 2x upsampling (transposed conv), then the skip from e2.
  x = tf.layers.conv2dTranspose({ name: 'up1_transpose', filters: 8, kernelSize: 2, strides: 2, padding: 'same', useBias: true }).apply(x) as T; // 8x8x8
  x = convBnAct(concat([x, e2], 'up1_concat'), 'dec1', 8, 3);
  // Decoder 2: nearest upsampling + 1x1 conv; a padded-then-cropped branch checks Cropping2D.
  x = tf.layers.upSampling2d({ name: 'up2_upsample', size: [2, 2] }).apply(x) as T; // 16x16x8
  x = conv(x, 'up2_conv', 6, 1, { useBias: true });
  x = tf.layers.zeroPadding2d({ name: 'up2_pad', padding: [[1, 1], [1, 1]] }).apply(x) as T;
  x = tf.layers.cropping2D({ name: 'up2_crop', cropping: [[1, 1], [1, 1]] }).apply(x) as T;
  x = convBnAct(concat([x, e1], 'up2_concat'), 'dec2', 6, 3);
  const out = conv(x, 'segmentation', 2, 1, { useBias: true });
  return finish(x0, out, 'unet_style', seed);
}

/**
 * RepVGG blocks as someone writes them in Keras: 3x3+BN, 1x1+BN and identity BN branches summed,
 * then ReLU. Stride 2 with 'same' padding on an even map (TensorFlow pads 0 before, 1 after), a
 * ZeroPadding2D + 'valid' stride-2 block, and stride 2 'same' on an odd map (`oddInput`).
 */
function buildRepVggKeras(seed: number, oddInput = false): tf.LayersModel {
  const size = oddInput ? 15 : 16;
  const x0 = input([size, size, 3]);
  const block = (h: T, name: string, filters: number, strides: number, identity: boolean, zeroPad = false): T => {
    const branches: T[] = [];
    const padded = zeroPad ? (tf.layers.zeroPadding2d({ name: `${name}_pad`, padding: [[1, 1], [1, 1]] }).apply(h) as T) : h;
    branches.push(bn(conv(padded, `${name}_3x3`, filters, 3, { strides, padding: zeroPad ? 'valid' : 'same' }), `${name}_3x3_bn`));
    branches.push(bn(conv(h, `${name}_1x1`, filters, 1, { strides, padding: zeroPad ? 'valid' : 'same' }), `${name}_1x1_bn`));
    if (identity) branches.push(bn(h, `${name}_id_bn`));
    return relu(add(branches, `${name}_add`), `${name}_relu`);
  };
  let x = block(x0, 'stage0', 8, 2, false); // even: 8x8 (asymmetric pad); odd: 8x8 from 15 (symmetric)
  x = block(x, 'stage1_0', 8, 1, true);
  x = block(x, 'stage1_1', 12, 2, false, true); // ZeroPadding2D + valid: 4x4
  x = block(x, 'stage2_0', 12, 1, true);
  x = block(x, 'stage2_1', 16, 2, false); // 'same' stride 2 on an even 4x4 map
  return finish(x0, classifierHead(x, CLASSES), oddInput ? 'repvgg_keras_odd' : 'repvgg_keras', seed);
}

/** MobileNetV1 (Keras applications): relu6, ZeroPadding2D(((0,1),(0,1))) before stride-2 depthwise, the 1x1-conv classifier top with Reshapes. */
function buildMobileNetV1(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = tf.layers.zeroPadding2d({ name: 'conv1_pad', padding: [[0, 1], [0, 1]] }).apply(x0) as T;
  x = relu(bn(conv(x, 'conv1', 8, 3, { strides: 2, padding: 'valid' }), 'conv1_bn'), 'conv1_relu', 6); // 8x8
  const dwBlock = (h: T, id: number, filters: number, strides: number): T => {
    if (strides === 2) h = tf.layers.zeroPadding2d({ name: `conv_pad_${id}`, padding: [[0, 1], [0, 1]] }).apply(h) as T;
    h = tf.layers.depthwiseConv2d({ name: `conv_dw_${id}`, kernelSize: 3, strides, padding: strides === 1 ? 'same' : 'valid', useBias: false }).apply(h) as T;
    h = relu(bn(h, `conv_dw_${id}_bn`), `conv_dw_${id}_relu`, 6);
    h = conv(h, `conv_pw_${id}`, filters, 1);
    // Activation('relu6') as older converters write it, ReLU(max_value=6) as newer Keras does.
    const normalized = bn(h, `conv_pw_${id}_bn`);
    return id % 2 === 0 ? act(normalized, `conv_pw_${id}_relu`, 'relu6') : relu(normalized, `conv_pw_${id}_relu`, 6);
  };
  x = dwBlock(x, 1, 12, 1);
  x = dwBlock(x, 2, 16, 2); // 4x4
  x = dwBlock(x, 3, 16, 1);
  x = tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }).apply(x) as T;
  x = tf.layers.reshape({ name: 'reshape_1', targetShape: [1, 1, 16] }).apply(x) as T;
  x = tf.layers.dropout({ name: 'dropout', rate: 1e-3 }).apply(x) as T;
  x = conv(x, 'conv_preds', CLASSES, 1, { useBias: true });
  x = tf.layers.reshape({ name: 'reshape_2', targetShape: [CLASSES] }).apply(x) as T;
  const out = act(x, 'act_softmax', 'softmax');
  return finish(x0, out, 'mobilenet_v1', seed);
}

/**
 * A MobileNetV3 block with hard-swish as tfjs layers can express it: x * hard_sigmoid(x) with
 * Activation('hard_sigmoid') and Multiply (Keras' x + 3 is a TFOpLambda tfjs cannot load), and SE
 * gated by hard_sigmoid.
 */
function buildMobileNetV3(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  const hardSwish = (h: T, name: string) => tf.layers.multiply({ name: `${name}_mul` }).apply([h, act(h, `${name}_hsig`, 'hardSigmoid')]) as T;
  let x = hardSwish(bn(conv(x0, 'conv', 8, 3, { strides: 2 }), 'conv_bn'), 'conv_hswish'); // 8x8x8
  const block = (h: T, name: string, expand: number, outC: number, kernel: number, strides: number, inC: number): T => {
    let y = hardSwish(bn(conv(h, `${name}_expand`, expand, 1), `${name}_expand_bn`), `${name}_expand_hswish`);
    y = tf.layers.depthwiseConv2d({ name: `${name}_depthwise`, kernelSize: kernel, strides, padding: 'same', useBias: false }).apply(y) as T;
    y = hardSwish(bn(y, `${name}_depthwise_bn`), `${name}_depthwise_hswish`);
    y = squeezeExcite(y, `${name}_se`, expand, Math.max(1, expand / 4), 'relu', 'hardSigmoid');
    y = bn(conv(y, `${name}_project`, outC, 1), `${name}_project_bn`);
    return strides === 1 && inC === outC ? add([h, y], `${name}_add`) : y;
  };
  x = block(x, 'expanded_conv', 16, 8, 3, 1, 8);
  x = block(x, 'expanded_conv_1', 24, 12, 5, 2, 8); // 4x4
  x = hardSwish(bn(conv(x, 'conv_1', 24, 1), 'conv_1_bn'), 'conv_1_hswish');
  return finish(x0, classifierHead(x, CLASSES), 'mobilenet_v3_block', seed);
}

/** A conv trunk with a side branch of layers PaS does not know (Conv1D, LSTM, LayerNormalization) joined before the classifier. */
function buildUnknownLayers(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = convBnAct(x0, 'trunk1', 8, 3, { strides: 2 }); // 8x8x8
  x = convBnAct(x, 'trunk2', 8, 3, { strides: 2 }); // 4x4x8: feeds both branches
  x = convBnAct(x, 'trunk3', 12, 3); // 4x4x12
  const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as T; // [12]
  let seq = tf.layers.reshape({ name: 'to_sequence', targetShape: [16, 12] }).apply(x) as T;
  seq = tf.layers.conv1d({ name: 'conv1d', filters: 6, kernelSize: 3, padding: 'same' }).apply(seq) as T;
  seq = tf.layers.lstm({ name: 'lstm', units: 4 }).apply(seq) as T; // [4]
  seq = tf.layers.layerNormalization({ name: 'layer_norm' }).apply(seq) as T;
  const joined = concat([pooled, seq], 'join');
  const hidden = tf.layers.dense({ name: 'hidden', units: 8, activation: 'relu' }).apply(joined) as T;
  const out = tf.layers.dense({ name: 'logits', units: CLASSES }).apply(hidden) as T;
  return finish(x0, out, 'unknown_layers', seed);
}

/** The activation layers and functions converters write: PReLU (per-channel alpha), LeakyReLU, ELU, elu/selu/gelu/tanh/sigmoid/softplus, GlobalMaxPooling2D, Softmax. */
function buildActivations(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = bn(conv(x0, 'conv_prelu', 8, 3, { strides: 2 }), 'bn_prelu');
  x = tf.layers.prelu({ name: 'prelu', sharedAxes: [1, 2] }).apply(x) as T;
  x = bn(conv(x, 'conv_leaky', 8, 3), 'bn_leaky');
  x = tf.layers.leakyReLU({ name: 'leaky', alpha: 0.1 }).apply(x) as T;
  x = conv(x, 'conv_elu', 8, 3, { useBias: true });
  x = tf.layers.elu({ name: 'elu_layer' }).apply(x) as T;
  x = convBnAct(x, 'unit_selu', 8, 3, { act: 'selu' });
  x = convBnAct(x, 'unit_gelu', 8, 3, { act: 'gelu' });
  x = convBnAct(x, 'unit_tanh', 8, 3, { act: 'tanh' });
  x = convBnAct(x, 'unit_elu', 8, 3, { act: 'elu' });
  x = convBnAct(x, 'unit_sigmoid', 8, 1, { act: 'sigmoid' });
  x = convBnAct(x, 'unit_softplus', 8, 1, { act: 'softplus' });
  x = tf.layers.globalMaxPooling2d({ name: 'gmp' }).apply(x) as T;
  x = tf.layers.dense({ name: 'logits', units: CLASSES }).apply(x) as T;
  const out = tf.layers.softmax({ name: 'softmax' }).apply(x) as T;
  return finish(x0, out, 'activations', seed);
}

/** DeepLab style: dilated (atrous) 3x3 convs at rates 2 and 3 keep the map size; a 1x1 branch beside them (ASPP in miniature). */
function buildDilated(seed: number): tf.LayersModel {
  const x0 = input([16, 16, 3]);
  let x = convBnAct(x0, 'stem', 8, 3, { strides: 2 }); // 8x8
  x = convBnAct(x, 'atrous2', 8, 3, { dilation: 2 });
  const rate3 = convBnAct(x, 'aspp_rate3', 6, 3, { dilation: 3 });
  const pointwise = convBnAct(x, 'aspp_1x1', 6, 1);
  x = convBnAct(concat([rate3, pointwise], 'aspp_concat'), 'aspp_project', 8, 1);
  return finish(x0, classifierHead(x, CLASSES), 'dilated', seed);
}

export const FAMILIES: Family[] = [
  { name: 'densenet', description: 'DenseNet-style concatenation (pre-activation BN-ReLU-conv, transition pooling)', classifier: true, unknownClasses: [], keepsBatchNorm: 'pre-activation BN follows a Concatenate or pooling and precedes ReLU -> conv: no conv to fold it into', build: buildDenseNet },
  { name: 'inception', description: 'Inception-style branches (1x1, 1x7/7x1, double 3x3, same-padded pooling; BN without scale; grid reduction)', classifier: true, unknownClasses: [], build: buildInception },
  { name: 'efficientnet', description: 'EfficientNet-style MBConv with squeeze-excitation and swish', classifier: true, unknownClasses: [], build: buildEfficientNet },
  { name: 'xception', description: 'Xception-style SeparableConv2D (depth_multiplier 1 and 2), strided 1x1 shortcuts', classifier: true, unknownClasses: [], build: buildXception },
  { name: 'resnet50', description: 'ResNet-50-style bottlenecks with biased convs before BN', classifier: true, unknownClasses: [], build: buildResNet50 },
  { name: 'unet', description: 'U-Net-style Conv2DTranspose / UpSampling2D decoders, Concatenate skips, Cropping2D, per-pixel output', classifier: false, unknownClasses: [], build: buildUNet },
  { name: 'repvgg-keras', description: "RepVGG blocks in Keras: stride-2 'same' on even maps, ZeroPadding2D + 'valid'", classifier: true, unknownClasses: [], build: (seed) => buildRepVggKeras(seed, false) },
  { name: 'repvgg-keras-odd', description: "RepVGG blocks in Keras on an odd 15x15 input (stride-2 'same' pads symmetrically)", classifier: true, unknownClasses: [], build: (seed) => buildRepVggKeras(seed, true) },
  { name: 'mobilenet-v1', description: 'MobileNetV1 with relu6, asymmetric ZeroPadding2D, 1x1-conv classifier between Reshapes, softmax', classifier: true, unknownClasses: [], build: buildMobileNetV1 },
  { name: 'mobilenet-v3', description: 'MobileNetV3-style block with hard-swish (Multiply of x and hard_sigmoid(x)) and hard-sigmoid SE', classifier: true, unknownClasses: [], build: buildMobileNetV3 },
  { name: 'unknown-layers', description: 'a conv trunk with a Reshape -> Conv1D -> LSTM -> LayerNormalization branch', classifier: true, unknownClasses: ['Conv1D', 'LSTM', 'LayerNormalization'], build: buildUnknownLayers },
  { name: 'activations', description: 'PReLU, LeakyReLU, ELU, selu/gelu/tanh/elu/sigmoid/softplus, GlobalMaxPooling2D, Softmax', classifier: true, unknownClasses: [], build: buildActivations },
  { name: 'dilated', description: 'DeepLab-style dilated convs (rates 2 and 3) and an ASPP-like concatenation', classifier: true, unknownClasses: [], build: buildDilated },
];

export function familyByName(name: string): Family {
  const family = FAMILIES.find((f) => f.name === name);
  if (!family) throw new Error(`no family '${name}'`);
  return family;
}
