import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from './data/random';

/**
 * Max |a(x) - b(x)| over a random batch, both models in inference mode: the check that a
 * transform (pruning, reparameterization) changed nothing the model computes.
 */
export function maxOutputDifference(a: tf.LayersModel, b: tf.LayersModel, inputShape: number[], options: { batch?: number; seed?: number } = {}): number {
  const batch = options.batch ?? 4;
  const random = mulberry32(options.seed ?? 1234);
  const size = batch * inputShape.reduce((x, y) => x * y, 1);
  const values = new Float32Array(size);
  // Roughly standard normal inputs (sum of uniforms), like normalized images.
  for (let i = 0; i < size; i++) values[i] = (random() + random() + random() - 1.5) * 2;
  return tf.tidy(() => {
    const x = tf.tensor(values, [batch, ...inputShape]);
    const ya = a.predict(x) as tf.Tensor;
    const yb = b.predict(x) as tf.Tensor;
    return tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0];
  });
}
