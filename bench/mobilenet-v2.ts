/**
 * MobileNetV2 (Sandler et al. 2018, width 1.0) built from stock tfjs layers with the layer names
 * and structure of `tf.keras.applications.MobileNetV2`: Conv2D / DepthwiseConv2D without bias,
 * BatchNormalization (epsilon 1e-3, momentum 0.999), ReLU(max_value 6), Add for the residuals,
 * ZeroPadding2D + 'valid' before each stride-2 conv (Keras' correct_pad). A bench model for real-
 * model speed; `bench/torch_reference.py` uses torchvision's mobilenet_v2 for the PyTorch side.
 */
import * as tf from '@tensorflow/tfjs';

/** (expansion t, output channels c, repeats n, first stride s) of the inverted residual stages. */
const STAGES: ReadonlyArray<readonly [number, number, number, number]> = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export function buildMobileNetV2(options: { inputSize?: number; numClasses?: number; seed?: number } = {}): tf.LayersModel {
  const size = options.inputSize ?? 224;
  let seed = options.seed ?? 1;
  const init = () => tf.initializers.heNormal({ seed: seed++ });
  const bn = (name: string) => tf.layers.batchNormalization({ name, epsilon: 1e-3, momentum: 0.999 });
  const relu6 = (name: string) => tf.layers.reLU({ name, maxValue: 6 });
  // Keras' correct_pad for an even input: 0 before, 1 after.
  const pad = (name: string) => tf.layers.zeroPadding2d({ name, padding: [[0, 1], [0, 1]] });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor) => layer.apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });
  let x = apply(pad('Conv1_pad'), input);
  x = apply(tf.layers.conv2d({ name: 'Conv1', filters: 32, kernelSize: 3, strides: 2, padding: 'valid', useBias: false, kernelInitializer: init() }), x);
  x = apply(relu6('Conv1_relu'), apply(bn('bn_Conv1'), x));
  let channels = 32;
  let block = 0;
  for (const [expansion, outChannels, repeats, firstStride] of STAGES) {
    for (let r = 0; r < repeats; r++) {
      const stride = r === 0 ? firstStride : 1;
      const prefix = block === 0 ? 'expanded_conv_' : `block_${block}_`;
      const blockInput = x;
      let h = x;
      if (expansion !== 1) {
        h = apply(tf.layers.conv2d({ name: `${prefix}expand`, filters: channels * expansion, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: init() }), h);
        h = apply(relu6(`${prefix}expand_relu`), apply(bn(`${prefix}expand_BN`), h));
      }
      if (stride === 2) h = apply(pad(`${prefix}pad`), h);
      h = apply(tf.layers.depthwiseConv2d({ name: `${prefix}depthwise`, kernelSize: 3, strides: stride, padding: stride === 2 ? 'valid' : 'same', useBias: false, depthwiseInitializer: init() }), h);
      h = apply(relu6(`${prefix}depthwise_relu`), apply(bn(`${prefix}depthwise_BN`), h));
      h = apply(tf.layers.conv2d({ name: `${prefix}project`, filters: outChannels, kernelSize: 1, padding: 'same', useBias: false, kernelInitializer: init() }), h);
      h = apply(bn(`${prefix}project_BN`), h);
      if (stride === 1 && channels === outChannels) h = tf.layers.add({ name: `${prefix}add` }).apply([blockInput, h]) as tf.SymbolicTensor;
      x = h;
      channels = outChannels;
      block++;
    }
  }
  x = apply(tf.layers.conv2d({ name: 'Conv_1', filters: 1280, kernelSize: 1, useBias: false, kernelInitializer: init() }), x);
  x = apply(relu6('out_relu'), apply(bn('Conv_1_bn'), x));
  x = apply(tf.layers.globalAveragePooling2d({ name: 'global_average_pooling2d' }), x);
  const output = apply(tf.layers.dense({ name: 'predictions', units: options.numClasses ?? 1000, kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }), x);
  return tf.model({ inputs: input, outputs: output, name: 'mobilenetv2_1.00_224' });
}
