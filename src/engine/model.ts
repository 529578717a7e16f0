import * as tf from '@tensorflow/tfjs';
import * as path from 'path';
import { PasInputError } from './errors';
import { loadLayersModelFromFile } from './io';
import { importOnnxModel, isOnnxPath, OnnxSourceInfo } from './onnx';
import { assertNotForeignModelFormat, hasOnnxSignature } from './io/modelFormats';
// Registers the DBC mask layer with tfjs and the loader.
import './layers/registered';
import { buildBuiltin, BuiltinOptions, isBuiltinSpec } from './zoo/builtins';


/** A model and where it came from. */
export interface LoadedModel {
  model: tf.LayersModel;
  /** The model.json path, or the builtin spec. */
  source: string;
  /** The model.json path, when the model came from a file. */
  file?: string;
  isBuiltin: boolean;
  /** Set when the model was imported from an .onnx file: what an ONNX export of it keeps. */
  onnx?: OnnxSourceInfo;
}

/** Loads `builtin:NAME` (with options) or a model.json path. */
export async function loadModelSource(spec: string, builtinOptions: BuiltinOptions = {}): Promise<LoadedModel> {
  if (isBuiltinSpec(spec)) {
    return { model: buildBuiltin(spec, builtinOptions), source: spec, isBuiltin: true };
  }
  let file = path.resolve(spec);
  if (isOnnxPath(file) || hasOnnxSignature(file)) {
    const { model, info } = await importOnnxModel(file);
    return { model, source: file, file, isBuiltin: false, onnx: info };
  }
  assertNotForeignModelFormat(file);
  if (!file.endsWith('.json')) {
    // A folder holding model.json is accepted too.
    file = path.join(file, 'model.json');
  }
  return { model: await loadLayersModelFromFile(file), source: file, file, isBuiltin: false };
}

/** Input shape [h, w, c] of a single-input image model. */
export function imageInputShape(model: tf.LayersModel, source: string): [number, number, number] {
  if (model.inputs.length !== 1) throw new PasInputError(`the model has ${model.inputs.length} inputs; PaS needs one image input`, source);
  const shape = model.inputs[0].shape;
  if (shape.length !== 4 || shape.slice(1).some((d) => d == null)) {
    throw new PasInputError(`the model input has shape [${shape.join(', ')}]; PaS needs [batch, height, width, channels]`, source);
  }
  return shape.slice(1) as [number, number, number];
}

/** Number of classes of a classifier (the last dimension of its single output). */
export function classCount(model: tf.LayersModel, source: string): number {
  if (model.outputs.length !== 1) throw new PasInputError(`the model has ${model.outputs.length} outputs; PaS needs one classifier output`, source);
  const shape = model.outputs[0].shape;
  const classes = shape[shape.length - 1];
  if (shape.length !== 2 || classes == null || classes < 2) {
    throw new PasInputError(`the model output has shape [${shape.join(', ')}]; PaS needs [batch, classes] logits`, source);
  }
  return classes;
}
