/**
 * The throughput benchmark's reference net (docs: environment facts): 28x28x1 input, six
 * conv3x3 (no bias) + BatchNorm + ReLU blocks with (filters, stride) = (16,1) (32,2) (32,1)
 * (64,2) (64,1) (128,2), global average pooling, dense 10. `bench/torch_reference.py` builds the
 * same net in PyTorch.
 */
import * as tf from '@tensorflow/tfjs';

/** (filters, stride) of the reference net's conv blocks. */
export const REFERENCE_BLOCKS: ReadonlyArray<readonly [number, number]> = [
  [16, 1],
  [32, 2],
  [32, 1],
  [64, 2],
  [64, 1],
  [128, 2],
];

/** Builds the reference net; `seed` makes the initial weights reproducible. */
export function buildReferenceNet(seed = 1): tf.LayersModel {
  const model = tf.sequential({ name: 'reference' });
  REFERENCE_BLOCKS.forEach(([filters, stride], i) => {
    model.add(
      tf.layers.conv2d({
        ...(i === 0 ? { inputShape: [28, 28, 1] } : {}),
        filters,
        kernelSize: 3,
        strides: stride,
        padding: 'same',
        useBias: false,
        kernelInitializer: tf.initializers.heNormal({ seed: seed + i }),
      }),
    );
    model.add(tf.layers.batchNormalization());
    model.add(tf.layers.reLU());
  });
  model.add(tf.layers.globalAveragePooling2d({}));
  model.add(tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed }) }));
  return model;
}
