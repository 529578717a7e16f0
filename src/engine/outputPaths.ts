import * as fs from 'fs';
import * as path from 'path';
import { PasInputError } from './errors';

/** `base`, or `base-2`, `base-3`, ... : the first that does not exist yet. */
export function firstFreePath(base: string): string {
  if (!fs.existsSync(base)) return base;
  for (let i = 2; ; i++) {
    const candidate = `${base}-${i}`;
    if (!fs.existsSync(candidate)) return candidate;
  }
}

/**
 * Default output folder of a run on `modelFile`: a new sibling of the model's folder (never the
 * folder itself, so nothing of the user's is overwritten); for a builtin, under the current folder.
 */
export function defaultOutputDir(modelFile: string | undefined, builtinName: string, suffix: string): string {
  if (!modelFile) return firstFreePath(path.resolve(`${builtinName.replace(/^builtin:/, '')}-${suffix}`));
  const modelDir = path.dirname(path.resolve(modelFile));
  return firstFreePath(`${modelDir}-${suffix}`);
}

/** Refuses an output folder that is, or is inside, the input model's folder. */
export function assertOutsideModelFolder(outDir: string, modelFile: string | undefined): void {
  if (!modelFile) return;
  const modelDir = path.dirname(path.resolve(modelFile));
  const out = path.resolve(outDir);
  if (out === modelDir || out.startsWith(modelDir + path.sep)) {
    throw new PasInputError(`the output folder is inside the input model's folder ${modelDir}; PaS never writes next to the input files - pass another --out`, out);
  }
}
