/**
 * Where the extension asks the CLI to write: a new folder next to the model's folder.
 *
 * Never the model's own folder (a search or reparameterization must not mix its files with, or
 * overwrite, the input model's `model.json` and weight shards), and never an existing folder: a
 * numeric suffix is added until the name is free.
 */
import * as path from 'path';

export type OutputKind = 'pas' | 'deployed';

/** Sanitizes a label into a folder-name fragment (builtin names contain `:`). */
export function folderSafe(label: string): string {
  const s = label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
  return s === '' || s === '.' || s === '..' ? 'model' : s;
}

/**
 * Picks a fresh output folder for `modelPath` (a model.json path).
 * `/a/net/model.json` -> `/a/net-pas`, then `/a/net-pas-2`, `/a/net-pas-3`, ...
 * `exists` is injected so the rule is testable without a file system.
 */
export function chooseOutputDir(modelPath: string, kind: OutputKind, exists: (p: string) => boolean): string {
  const modelDir = path.dirname(path.resolve(modelPath));
  const parent = path.dirname(modelDir);
  const base = `${folderSafe(path.basename(modelDir) || 'model')}-${kind}`;
  return firstFree(parent, base, exists, [modelDir]);
}

/** Same rule for a builtin model (`builtin:NAME`): a fresh folder under `baseDir`. */
export function chooseBuiltinOutputDir(model: string, baseDir: string, kind: OutputKind, exists: (p: string) => boolean): string {
  return firstFree(path.resolve(baseDir), `${folderSafe(model)}-${kind}`, exists, []);
}

/**
 * A fresh folder beside `dir` named after it: `/a/net-pas` + `compare` -> `/a/net-pas-compare`,
 * then `/a/net-pas-compare-2`, ... (the comparison of a finished run, next to the run).
 */
export function chooseSiblingDir(dir: string, suffix: string, exists: (p: string) => boolean): string {
  const resolved = path.resolve(dir);
  return firstFree(path.dirname(resolved), `${folderSafe(path.basename(resolved) || 'run')}-${suffix}`, exists, [resolved]);
}

function firstFree(parent: string, base: string, exists: (p: string) => boolean, forbidden: string[]): string {
  for (let i = 1; i < 10000; i++) {
    const candidate = path.join(parent, i === 1 ? base : `${base}-${i}`);
    if (forbidden.some((f) => path.resolve(f) === candidate)) continue;
    if (!exists(candidate)) return candidate;
  }
  throw new Error(`no free output folder name for ${base} in ${parent}`);
}
