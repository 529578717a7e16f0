import * as tf from '@tensorflow/tfjs';

/** What one replica computed for its shard of a batch. */
export interface ShardResult {
  /** d(scale * loss)/d(variable), one per trainable variable, in the caller's order. */
  gradients: Float32Array[];
  /** Mean cross-entropy of the shard (unscaled, without extra terms). */
  crossEntropy: number;
  /** The value of the extra terms (MACs budget, weight decay); 0 where none were given. */
  extraLoss: number;
  /** Correctly classified images of the shard. */
  correct: number;
}

/**
 * Gradients of `scale * crossEntropy(model(x), y) + extra()` with respect to `variables`
 * (training mode: BatchNorm uses the shard's statistics and updates its moving averages).
 * Shared by the main thread and the replica threads, so both compute exactly the same way.
 */
export function shardGradients(
  model: tf.LayersModel,
  x: tf.Tensor,
  y: tf.Tensor,
  scale: number,
  variables: tf.Variable[],
  extra?: () => tf.Scalar,
): ShardResult {
  let crossEntropy = 0;
  let extraLoss = 0;
  let correct = 0;
  // The tidy returns tensors only: tfjs walks a tidy's result looking for tensors, and walking
  // large Float32Arrays element by element cost more than the backward pass.
  const gradientTensors = tf.tidy(() => {
    const { grads } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      const ce = tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
      crossEntropy = ce.dataSync()[0];
      correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32')).dataSync()[0];
      let loss = tf.mul(ce, scale) as tf.Scalar;
      if (extra) {
        const extraValue = extra();
        extraLoss = extraValue.dataSync()[0];
        loss = tf.add(loss, extraValue);
      }
      return loss;
    }, variables);
    // A variable the loss does not reach gets zeros (minimize would skip it; with a fresh
    // momentum optimizer per epoch a zero update leaves it unchanged as well).
    return variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
  });
  const gradients = gradientTensors.map((g) => g.dataSync() as Float32Array);
  tf.dispose(gradientTensors);
  return { gradients, crossEntropy, extraLoss, correct };
}

/** Indices into `model.weights` of the BatchNorm moving mean and variance variables. */
export function movingStatIndices(model: tf.LayersModel): number[] {
  return model.weights.flatMap((w, i) => (/moving_(mean|variance)/.test(w.originalName) ? [i] : []));
}

/** Applies one update: the same optimizer on the same gradients gives the same weights everywhere. */
export function applyUpdate(optimizer: tf.Optimizer, variables: tf.Variable[], gradients: Float32Array[]): void {
  tf.tidy(() => {
    optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: tf.tensor(gradients[i], v.shape) })));
  });
}

/** Overwrites the moving statistics (indices into `model.weights`) with the given values. */
export function setMovingStats(model: tf.LayersModel, indices: number[], values: Float32Array[]): void {
  indices.forEach((index, i) => {
    const variable = model.weights[index];
    const value = tf.tensor(values[i], variable.shape as number[]);
    variable.write(value);
    value.dispose();
  });
}

/** Reads the moving statistics (indices into `model.weights`). */
export function readMovingStats(model: tf.LayersModel, indices: number[]): Float32Array[] {
  return indices.map((index) => Float32Array.from(model.weights[index].read().dataSync() as Float32Array));
}
