/**
 * Saving a Layers model as a folder (model.json + one weights.bin shard) atomically: the folder
 * is assembled under a temp name next to the target, fsynced, and renamed into place, so that a
 * crash never leaves a half-written model where a later load (or `pas` resume) would find it.
 */
import * as tf from '@tensorflow/tfjs';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { PasInputError } from '../errors';
import { FileContents, syncFolder, uniqueTempSuffix, writeNewFileDurably } from './atomic';
import { describeFsError, errorCode } from './fsErrors';

/** File names inside a saved model folder. */
export const MODEL_JSON_FILE_NAME = 'model.json';
export const WEIGHTS_FILE_NAME = 'weights.bin';

/** Options of {@link saveLayersModelToDir}. */
export interface SaveLayersModelOptions {
  /** Replace an existing non-empty folder (atomically) instead of refusing. Default false. */
  overwrite?: boolean;
  /** More files written into the same folder, in the same atomic step (e.g. the model as ONNX). */
  extraFiles?: { name: string; data: FileContents }[];
}

/** Where {@link saveLayersModelToDir} put the files (absolute paths). */
export interface SavedModelPaths {
  modelJsonPath: string;
  weightsPath: string;
}

/** What is at the target path before saving, which decides how the new folder is published. */
type TargetState = 'absent' | 'emptyFolder' | 'folderToReplace';

async function inspectTarget(target: string, dir: string, overwrite: boolean): Promise<TargetState> {
  let stats;
  try {
    stats = await fsp.lstat(target);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'absent';
    throw new PasInputError(`cannot write the output folder: ${describeFsError(error)}`, dir);
  }
  if (stats.isDirectory()) {
    const entries = await fsp.readdir(target).catch((error: unknown) => {
      throw new PasInputError(`cannot read the output folder: ${describeFsError(error)}`, dir);
    });
    if (entries.length === 0) return 'emptyFolder';
    if (overwrite) return 'folderToReplace';
  } else if (overwrite) {
    // Only a folder this function could have written is replaced; a file or link is left alone.
    throw new PasInputError('output path exists and is not a folder; refusing to replace it', dir);
  }
  throw new PasInputError('output folder already exists and is not empty; pass another --out', dir);
}

/** Captures the artifacts tfjs would save, without any tfjs IO handler touching the disk. */
async function captureArtifacts(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (!captured) throw new Error('tfjs model.save did not call the save handler');
  restoreDepthMultipliers(model, captured.modelTopology);
  return captured;
}

/**
 * tfjs 4.22's SeparableConv2D.getConfig leaves out depth_multiplier, so a saved model with a
 * multiplier above 1 would not load back: write it into the topology from the live layer.
 */
export function restoreDepthMultipliers(model: tf.LayersModel, topology: unknown): void {
  const config = (topology as { model_config?: any; config?: any } | undefined);
  const modelConfig = config?.model_config ?? config;
  const layers: any[] = Array.isArray(modelConfig?.config) ? modelConfig.config : modelConfig?.config?.layers ?? [];
  for (const entry of layers) {
    if (!entry?.config || entry.config.depth_multiplier !== undefined) continue;
    const layer = model.layers.find((l) => l.name === entry.config.name) as unknown as { depthMultiplier?: number } | undefined;
    if (layer?.depthMultiplier !== undefined) entry.config.depth_multiplier = layer.depthMultiplier;
  }
}

/** The model.json tfjs itself writes for these artifacts, with a single shard. */
function modelJsonFor(artifacts: tf.io.ModelArtifacts): tf.io.ModelJSON {
  return {
    modelTopology: artifacts.modelTopology as {},
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [WEIGHTS_FILE_NAME], weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.trainingConfig !== undefined ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.userDefinedMetadata !== undefined ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
}

/**
 * Moves the finished temp folder to `target`. For a replacement, the old folder is first renamed
 * aside, so at every instant one complete folder exists: the old one (at `target`, or briefly
 * under `<target>.old-*` between the two renames) or the new one. Linux cannot swap two folders
 * in one rename, which is why that brief window exists.
 */
async function publish(tempDir: string, target: string, state: TargetState): Promise<void> {
  if (state === 'absent') return fsp.rename(tempDir, target);
  if (state === 'emptyFolder') {
    // rmdir fails if something appeared meanwhile, so nothing is lost; rename onto an empty
    // folder works on POSIX but not on Windows, hence the rmdir.
    await fsp.rmdir(target);
    return fsp.rename(tempDir, target);
  }
  const oldDir = `${target}.old-${uniqueTempSuffix()}`;
  await fsp.rename(target, oldDir);
  try {
    await fsp.rename(tempDir, target);
  } catch (error) {
    await fsp.rename(oldDir, target).catch(() => undefined);
    throw error;
  }
  await fsp.rm(oldDir, { recursive: true, force: true }).catch(() => undefined);
}

function describeCreateError(error: unknown, target: string): string {
  const parent = path.dirname(target);
  if (errorCode(error) === 'ENOENT') return `its parent folder ${parent} does not exist`;
  if (errorCode(error) === 'ENOTDIR') return `${parent} (or a folder above it) is not a folder`;
  return describeFsError(error);
}

/**
 * Saves `model` to the folder `dir` as `model.json` + a single `weights.bin` shard, atomically.
 *
 * The folder is written as `<dir>.tmp-<pid>-<random>` next to `dir`, every file and the folder
 * are fsynced, then it is renamed to `dir`. If `dir` exists and is not empty the save is refused
 * unless `options.overwrite`, in which case the old folder is replaced by renames (see the crash
 * guarantees on `publish` above). Nothing is written anywhere else; in particular not in the
 * input model's folder unless `dir` is that folder or inside it.
 *
 * @returns the absolute paths of the written model.json and weights.bin.
 * @throws PasInputError naming `dir`: it exists and is not empty (without overwrite), or a
 *   filesystem error (permission denied, no space left, missing parent, ...); no temp folder is
 *   left behind.
 */
export async function saveLayersModelToDir(
  model: tf.LayersModel,
  dir: string,
  options: SaveLayersModelOptions = {},
): Promise<SavedModelPaths> {
  const target = path.resolve(dir);
  // Checked before the (possibly large) weights are captured.
  await inspectTarget(target, dir, options.overwrite === true);
  const artifacts = await captureArtifacts(model);
  const weightData = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
  await saveFilesToDir(
    dir,
    [
      { name: WEIGHTS_FILE_NAME, data: weightData },
      { name: MODEL_JSON_FILE_NAME, data: JSON.stringify(modelJsonFor(artifacts)) },
      ...(options.extraFiles ?? []),
    ],
    options,
  );
  return { modelJsonPath: path.join(target, MODEL_JSON_FILE_NAME), weightsPath: path.join(target, WEIGHTS_FILE_NAME) };
}

/**
 * Writes `files` as the folder `dir`, atomically, with the same rules as
 * {@link saveLayersModelToDir} (temp folder, fsync, rename; a non-empty `dir` only with overwrite).
 */
export async function saveFilesToDir(dir: string, files: { name: string; data: FileContents }[], options: { overwrite?: boolean } = {}): Promise<void> {
  const target = path.resolve(dir);
  const state = await inspectTarget(target, dir, options.overwrite === true);
  const tempDir = `${target}.tmp-${uniqueTempSuffix()}`;
  try {
    await fsp.mkdir(tempDir);
  } catch (error) {
    throw new PasInputError(`cannot create the output folder: ${describeCreateError(error, target)}`, dir);
  }
  try {
    for (const file of files) await writeNewFileDurably(path.join(tempDir, file.name), file.data);
    await syncFolder(tempDir);
    await publish(tempDir, target, state);
  } catch (error) {
    await fsp.rm(tempDir, { recursive: true, force: true }).catch(() => undefined);
    throw new PasInputError(`cannot write the output folder: ${describeFsError(error)}`, dir);
  }
  await syncFolder(path.dirname(target));
}
