/**
 * TF.js builds some models it cannot run (a ReLU given two inputs, a Softmax over an axis list):
 * the build only checks what each layer's computeOutputShape checks. Such a model would fail deep
 * inside inspect, the search or the deployment with an internal error; here it is refused at load
 * time, naming the file and, where it can be found, the layer.
 */
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A zero batch of one for each input, or undefined when an input has an unknown non-batch size. */
function zeroBatchOfOne(model: tf.LayersModel): tf.Tensor[] | undefined {
  const shapes = model.inputs.map((input) => [1, ...input.shape.slice(1)]);
  if (shapes.some((shape) => shape.some((dim) => dim === null || dim === undefined))) return undefined;
  return model.inputs.map((input, index) => tf.zeros(shapes[index] as number[], input.dtype));
}

/** Runs `outputs` of the model's graph on `inputs`; throws what tfjs throws. */
function runUpTo(model: tf.LayersModel, outputs: tf.SymbolicTensor | tf.SymbolicTensor[], inputs: tf.Tensor[]): void {
  // A view of the model's own layers (no weights of its own; it must not be disposed, that would
  // dispose the model's weights).
  const prefix = tf.model({ inputs: model.inputs, outputs });
  prefix.predict(inputs);
}

/**
 * The first layer (in the model's topological order) whose output cannot be computed, or undefined.
 * Only called after the whole model failed; each step runs the graph up to one layer.
 */
function findFailingLayer(model: tf.LayersModel, inputs: tf.Tensor[]): string | undefined {
  const inputLayerNames = new Set(model.inputLayers.map((layer) => layer.name));
  for (const layer of model.layers) {
    if (inputLayerNames.has(layer.name)) continue;
    let output: tf.SymbolicTensor | tf.SymbolicTensor[];
    try {
      output = layer.getOutputAt(0);
    } catch {
      continue; // a layer without a single first output (shared oddly): cannot be isolated this way
    }
    try {
      tf.tidy(() => runUpTo(model, output, inputs));
    } catch {
      return layer.name;
    }
  }
  return undefined;
}

/**
 * Runs the model once in inference mode on a zero batch of one (cheap: one forward pass at batch
 * 1). Models with an unknown non-batch input size are not run.
 *
 * @throws PasInputError naming `modelJsonPath`: "the model does not run: <tfjs message>", with the
 *   layer where the failure starts when it can be found.
 */
export function assertModelRuns(model: tf.LayersModel, modelJsonPath: string): void {
  const inputs = zeroBatchOfOne(model);
  if (!inputs) return;
  try {
    try {
      tf.tidy(() => {
        model.predict(inputs);
      });
    } catch (runError) {
      let layerName: string | undefined;
      try {
        layerName = findFailingLayer(model, inputs);
      } catch {
        layerName = undefined;
      }
      const where = layerName ? ` (at layer '${layerName}')` : '';
      throw new PasInputError(`the model does not run${where}: ${errorMessage(runError)}`, modelJsonPath);
    }
  } finally {
    tf.dispose(inputs);
  }
}
