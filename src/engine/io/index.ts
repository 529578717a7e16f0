/**
 * Filesystem IO for TF.js Layers models (model.json + binary weight shards) with the pure-JS
 * tfjs: validated loading of untrusted model files, and atomic saving.
 */
export { writeFileAtomic, type FileContents } from './atomic';
export { loadLayersModelFromFile } from './loadModel';
export { readModelTopology, MAX_MODEL_JSON_BYTES } from './modelJson';
export {
  saveLayersModelToDir,
  saveFilesToDir,
  MODEL_JSON_FILE_NAME,
  WEIGHTS_FILE_NAME,
  type SaveLayersModelOptions,
  type SavedModelPaths,
} from './saveModel';
export { isLoadableLayerClass } from './supportedLayers';
export { MAX_WEIGHT_BYTES } from './weightManifest';
export { readModelArtifacts } from './weightShards';
