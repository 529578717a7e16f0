/**
 * Tells a TensorFlow.js Layers model (`model.json` from `model.save()` / tfjs-converter with
 * `--output_format tfjs_layers_model`) from any other JSON file, with a reason a user can act on.
 */

export type Detection = { ok: true } | { ok: false; reason: string };

/** Files bigger than this are not parsed by the host (the CLI still can). */
export const MAX_MODEL_JSON_BYTES = 64 * 1024 * 1024;

export function detectLayersModel(text: string): Detection {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `it is not valid JSON (${(e as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'it is not a JSON object' };
  }
  const obj = value as Record<string, unknown>;
  const topology = obj.modelTopology;
  if (typeof topology !== 'object' || topology === null) {
    return { ok: false, reason: 'it has no "modelTopology": it is not a TensorFlow.js model' };
  }
  if (obj.format === 'graph-model' || 'node' in (topology as object)) {
    return { ok: false, reason: 'it is a TensorFlow.js graph model; PaS needs a Layers model (format "layers-model")' };
  }
  const t = topology as Record<string, unknown>;
  const inner = (t.model_config ?? t) as Record<string, unknown> | null;
  const className = inner && typeof inner === 'object' ? inner.class_name : undefined;
  if (typeof className !== 'string') {
    return { ok: false, reason: 'its "modelTopology" has no Keras "class_name": it is not a Layers model' };
  }
  if (obj.weightsManifest !== undefined && !Array.isArray(obj.weightsManifest)) {
    return { ok: false, reason: '"weightsManifest" is not an array' };
  }
  return { ok: true };
}
