/**
 * Writing a deployed model in the format the user works in: ONNX for a model that came from
 * ONNX, TF.js Layers otherwise, or both (`--format`).
 */
import * as tf from '@tensorflow/tfjs';
import * as path from 'path';
import { MODEL_JSON_FILE_NAME, saveFilesToDir, saveLayersModelToDir } from '../io';
import { exportOnnxBytes } from './exportOnnx';
import type { OnnxSourceInfo } from './importOnnx';

export type DeployedFormat = 'onnx' | 'tfjs' | 'both';
export const DEPLOYED_FORMATS: readonly DeployedFormat[] = ['onnx', 'tfjs', 'both'];

/** File name of the ONNX model inside an output folder. */
export const ONNX_FILE_NAME = 'model.onnx';

/** The format a deployed model is written in when the user does not say: the input's own. */
export function defaultDeployedFormat(modelSpec: string): DeployedFormat {
  return modelSpec.toLowerCase().endsWith('.onnx') ? 'onnx' : 'tfjs';
}

export interface SavedDeployedModel {
  /** The model.json, when written. */
  modelJsonPath?: string;
  /** The model.onnx, when written. */
  onnxPath?: string;
}

/**
 * Saves `model` into the folder `dir` (atomically, as {@link saveLayersModelToDir}) as model.json +
 * weights.bin, model.onnx, or all three. The ONNX bytes are built first, so a layer without an ONNX
 * mapping refuses the save before anything is written.
 */
export async function saveDeployedModel(
  model: tf.LayersModel,
  dir: string,
  format: DeployedFormat,
  options: { overwrite?: boolean; source?: OnnxSourceInfo } = {},
): Promise<SavedDeployedModel> {
  const target = path.resolve(dir);
  const onnxFiles = format === 'tfjs' ? [] : [{ name: ONNX_FILE_NAME, data: exportOnnxBytes(model, { source: options.source }) }];
  const onnxPath = format === 'tfjs' ? undefined : path.join(target, ONNX_FILE_NAME);
  if (format === 'onnx') {
    await saveFilesToDir(dir, onnxFiles, options);
    return { onnxPath };
  }
  await saveLayersModelToDir(model, dir, { overwrite: options.overwrite, extraFiles: onnxFiles });
  return { modelJsonPath: path.join(target, MODEL_JSON_FILE_NAME), onnxPath };
}

/** The main file of a saved deployed model, for reports: the ONNX one when there is one. */
export function mainDeployedFile(saved: SavedDeployedModel): string {
  return (saved.onnxPath ?? saved.modelJsonPath) as string;
}
