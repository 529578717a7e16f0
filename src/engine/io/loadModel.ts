/**
 * Loading a Layers model from disk into tfjs. The model is checked (structure, supported layer
 * classes, weights) before tfjs deserializes it, and what tfjs still throws is turned into a
 * PasInputError that names the file, and where possible the layer and both shapes.
 */
import * as tf from '@tensorflow/tfjs';
import { PasInputError } from '../errors';
import { completeBatchNormParameters } from './batchNormDefaults';
import { mapGroupedConvs } from './groupedConvs';
import { normalizationCountsAsFloat } from './kerasNormalization';
import { readCheckedModelJson } from './modelJson';
import { assertModelRuns } from './runCheck';
import { assertLayersLoadable } from './supportedLayers';
import { readWeightsOfCheckedModel } from './weightShards';

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.join(', ')}]`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Builds the model from its topology alone (tfjs initializes the weights) and compares each
 * layer's weights with the manifest. Returns a message for the first mismatch, or undefined.
 */
async function findWeightMismatch(modelTopology: {}, weightSpecs: tf.io.WeightsManifestEntry[]): Promise<string | undefined> {
  const bareModel = await tf.loadLayersModel({ load: async () => ({ modelTopology: structuredClone(modelTopology) }) });
  try {
    const specByName = new Map(weightSpecs.filter((spec) => spec.group !== 'optimizer').map((spec) => [spec.name, spec]));
    const matchedSpecs = new Set<string>();
    for (const layer of bareModel.layers) {
      for (const weight of layer.weights) {
        const spec = specByName.get(weight.originalName);
        if (!spec) {
          return `layer '${layer.name}' needs weight ${weight.originalName} of shape ${shapeText(weight.shape)}, which the weights manifest does not list`;
        }
        matchedSpecs.add(spec.name);
        if (spec.shape.length !== weight.shape.length || spec.shape.some((dim, i) => dim !== weight.shape[i])) {
          return (
            `layer '${layer.name}' weight ${weight.originalName} has shape ${shapeText(weight.shape)} from the layer config ` +
            `but ${shapeText(spec.shape)} in the weights manifest`
          );
        }
      }
    }
    const extra = [...specByName.keys()].filter((name) => !matchedSpecs.has(name));
    if (extra.length > 0) {
      const spec = specByName.get(extra[0]) as tf.io.WeightsManifestEntry;
      const unexpected = `weight ${spec.name} of shape ${shapeText(spec.shape)}`;
      // Weight names are "<layer>/<weight>": name the layer when it exists, it is the one to fix.
      const owner = bareModel.layers.find((layer) => spec.name.startsWith(`${layer.name}/`));
      if (owner) {
        const expected = owner.weights.map((weight) => weight.originalName);
        return (
          `layer '${owner.name}' has ${expected.length} weight${expected.length === 1 ? '' : 's'} from its config (${expected.join(', ') || 'none'}), ` +
          `but the weights manifest also lists ${unexpected}`
        );
      }
      return `the weights manifest lists ${unexpected}, which no layer of the model has`;
    }
    return undefined;
  } finally {
    bareModel.dispose();
  }
}

/**
 * Loads a TF.js Layers model (model.json + weight shards) from the filesystem with the pure-JS
 * tfjs, via an in-memory IO handler fed by {@link readModelArtifacts}.
 *
 * Accepts what tfjs `model.save` writes and what the Keras 2 converter writes (Sequential with a
 * `layers` list or the legacy bare list, functional `Model`/`Functional` with Keras 2 style
 * `inbound_nodes`, `model_config` wrapping, `batch_input_shape` or an InputLayer). Keras 3
 * inbound nodes are refused (TF.js 4 cannot deserialize them). The saved `trainingConfig` is
 * ignored: PaS compiles models with its own optimizer, and an unknown Keras loss name in it
 * would otherwise fail the load.
 *
 * @throws PasInputError naming `modelJsonPath`: everything {@link readModelArtifacts} refuses, a
 *   layer class TF.js cannot deserialize (checked before reading weights), a weight whose manifest
 *   shape differs from what the layer config implies (naming the layer and both shapes), weights
 *   missing from or extra in the manifest, any other tfjs deserialization failure, and a model
 *   tfjs builds but cannot run (one forward pass at batch 1 on zeros; see {@link assertModelRuns}).
 *
 * BatchNormalization layers with `scale: false` / `center: false` come back with gamma = 1 /
 * beta = 0 made explicit (see {@link completeBatchNormParameters}): tfjs cannot train them otherwise.
 */
export async function loadLayersModelFromFile(modelJsonPath: string): Promise<tf.LayersModel> {
  const checked = await readCheckedModelJson(modelJsonPath);
  assertLayersLoadable(checked.layers, modelJsonPath);
  const artifacts = await readWeightsOfCheckedModel(checked, modelJsonPath);
  // tfjs cannot train a BN without gamma/beta: make them explicit (the same function).
  const completed = completeBatchNormParameters({
    modelTopology: artifacts.modelTopology as {},
    weightSpecs: artifacts.weightSpecs ?? [],
    weightData: artifacts.weightData as ArrayBuffer,
  });
  // Keras' Normalization keeps an int32 count; the engine's layer holds it as float32.
  const { weightSpecs, weightData } = normalizationCountsAsFloat(completed);
  // Keras' Conv2D(groups > 1) loads as the engine's GroupedConv2D (tfjs's Conv2D has no groups).
  const modelTopology = mapGroupedConvs(completed.modelTopology);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel({
      // tfjs deletes keys from the config while deserializing; give it a copy.
      load: async () => ({ modelTopology: structuredClone(modelTopology), weightSpecs, weightData }),
    });
  } catch (loadError) {
    let mismatch: string | undefined;
    try {
      mismatch = await findWeightMismatch(modelTopology, weightSpecs);
    } catch (buildError) {
      throw new PasInputError(`TF.js cannot build the model from its topology: ${errorMessage(buildError)}`, modelJsonPath);
    }
    throw new PasInputError(mismatch ?? `TF.js cannot load the model: ${errorMessage(loadError)}`, modelJsonPath);
  }
  try {
    assertModelRuns(model, modelJsonPath);
  } catch (runError) {
    model.dispose();
    throw runError;
  }
  return model;
}
