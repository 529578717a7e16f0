/**
 * BatchNormalization's moving averages, updated in JS on wasm instead of by tensor ops on the tape.
 *
 * tfjs-layers updates `moving_mean` and `moving_variance` inside the layer's training call with
 * three tensor ops each (sub, mul, sub). Those run while the gradient tape records the loss, so
 * the engine also clones their inputs for a backward pass that never uses them: about 18 kernel
 * calls per BatchNorm layer per step, a fifth of all the calls of a RepVGG-A0 training step (1,100
 * of 5,200), each paying the tfjs engine's per-call cost. Here the layer's training call normalizes
 * through the fused training kernels (batchnorm-training.ts: batch statistics, normalization and
 * gradient in two calls) and updates the averages from the batch statistics read back from the
 * heap, with the same float32 arithmetic as tfjs-layers (orig - (orig - batch) * (1 - momentum),
 * each step rounded; tested against the stock call).
 *
 * Only on wasm (reading the statistics back is a copy there, but a GPU sync on webgl or CUDA), only
 * for the layout tfjs-layers normalizes without broadcasting (the channel axis last, rank 2-4) with
 * both gamma and beta; everything else runs the stock call.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormInTraining } from './batchnorm-training';

type LayerVariable = ReturnType<tf.layers.Layer['addWeight']>;

interface BatchNormalizationInternals {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: LayerVariable | null;
  beta?: LayerVariable | null;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}

type Call = (this: tf.layers.Layer, inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }) => tf.Tensor | tf.Tensor[];

let stockCall: Call | undefined;

/** The call tfjs-layers ships (for tests comparing against it). */
export function stockBatchNormalizationCall(): Call {
  if (!stockCall) throw new Error('the BatchNormalization training call is not installed');
  return stockCall;
}

/** moving <- moving - (moving - batch) * (1 - momentum), in tfjs's float32 steps. */
function updateMovingAverage(variable: LayerVariable, batch: tf.Tensor, momentum: number): void {
  const current = variable.read();
  const moving = current.dataSync() as Float32Array;
  const values = batch.dataSync() as Float32Array;
  const decay = Math.fround(1 - momentum);
  const next = new Float32Array(moving.length);
  for (let k = 0; k < next.length; k++) next[k] = moving[k] - Math.fround(Math.fround(moving[k] - values[k]) * decay);
  tf.tidy(() => {
    variable.write(tf.tensor(next, current.shape));
  });
}

function trainingCall(stock: Call): Call {
  return function (this: tf.layers.Layer, inputs, kwargs) {
    const layer = this as unknown as BatchNormalizationInternals;
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const rank = input?.rank ?? 0;
    const lastAxis = layer.axis === -1 || layer.axis === rank - 1;
    if (!kwargs?.training || tf.getBackend() !== 'wasm' || !input || rank < 2 || rank > 4 || !lastAxis || !layer.gamma || !layer.beta || input.dtype !== 'float32') {
      return stock.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const { output: normed, mean, variance } = batchNormInTraining(input, layer.gamma!.read(), layer.beta!.read(), layer.epsilon);
      updateMovingAverage(layer.movingMean, mean, layer.momentum);
      updateMovingAverage(layer.movingVariance, variance, layer.momentum);
      return normed;
    });
  };
}

/** Wraps BatchNormalization's call (idempotent); see the module comment. */
export function installBatchNormMovingAverages(): void {
  if (stockCall) return;
  const prototype = Object.getPrototypeOf(tf.layers.batchNormalization({})) as { call: Call };
  stockCall = prototype.call;
  prototype.call = trainingCall(stockCall);
}
