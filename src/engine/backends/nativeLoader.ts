/**
 * Loads `@tensorflow/tfjs-node(-gpu)` from a separate install folder (`--native-dir`,
 * `PAS_NATIVE_DIR`; the extension's "Set Up Native Backend" installs one in its global storage) so
 * that the native package and the engine share ONE TensorFlow.js.
 *
 * Why a resolver hook and not "load the whole tfjs stack from the native folder": the engine keeps
 * `@tensorflow/*` external (esbuild.js) and has already loaded the bundled tfjs when the backend
 * ladder runs; the ladder may still fall back to wasm, whose package must register into that same
 * tfjs. So the one copy is always the engine's, and the native package is made to use it: while
 * the hook is installed, a `require('@tensorflow/tfjs...')` issued by a file inside the native
 * folder resolves as if the engine had issued it. The native package only uses the public entry
 * points (`@tensorflow/tfjs`, once `@tensorflow/tfjs-core`; no deep imports outside its tests),
 * which the .vsix ships. Its own copies under the native folder stay on disk, unloaded.
 * (tfjs-core 4.x keeps its engine on a global, so a second copy would even find the same engine;
 * but it would be another version-unchecked tfjs with its own op functions and gradient
 * registrations, which is exactly what this avoids.)
 */
import * as fs from 'fs';
import * as path from 'path';
import Module from 'module';

type ResolveFilename = (request: string, parent: NodeModule | undefined, isMain: boolean, options?: unknown) => string;
const moduleInternals = Module as unknown as { _resolveFilename: ResolveFilename };

/** `@tensorflow/tfjs`, `-core`, `-layers`, `-backend-cpu`, ...: everything but the native packages themselves. */
function isSharedTfjsRequest(request: string): boolean {
  return /^@tensorflow\/tfjs(-[a-z-]+)?(\/|$)/.test(request) && !/^@tensorflow\/tfjs-node(-gpu)?(\/|$)/.test(request);
}

function isInside(file: string, folder: string): boolean {
  const relative = path.relative(folder, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/** Native folders whose tfjs requests are redirected; the hook is installed once per process. */
const sharedFolders = new Set<string>();
let originalResolve: ResolveFilename | undefined;

function installHook(): void {
  if (originalResolve) return;
  const original = moduleInternals._resolveFilename;
  originalResolve = original;
  // The engine's own module: requests re-issued from it resolve to the engine's tfjs.
  const engineModule = module;
  moduleInternals._resolveFilename = function (this: unknown, request, parent, isMain, options) {
    if (parent?.filename && isSharedTfjsRequest(request)) {
      for (const folder of sharedFolders) {
        if (isInside(parent.filename, folder)) return original.call(this, request, engineModule, isMain, options);
      }
    }
    return original.call(this, request, parent, isMain, options);
  };
}

/** Makes files under `folder` resolve `@tensorflow/tfjs*` to the engine's copy (for the rest of the process). */
export function shareEngineTfjsWith(folder: string): void {
  sharedFolders.add(fs.realpathSync(folder));
  installHook();
}

/** Undoes `shareEngineTfjsWith` for `folder` (a native package that failed to load). */
export function stopSharingWith(folder: string): void {
  try {
    sharedFolders.delete(fs.realpathSync(folder));
  } catch {
    // the folder vanished: nothing of it can be resolved any more
  }
}

/**
 * The distinct `@tensorflow/tfjs-core` package folders whose files are loaded in this process.
 * One means the engine and every backend share one tfjs.
 */
export function loadedTfjsCoreCopies(): string[] {
  const roots = new Set<string>();
  for (const file of Object.keys(require.cache)) {
    const match = /^(.*[\\/]node_modules[\\/]@tensorflow[\\/]tfjs-core)[\\/]/.exec(file);
    if (match) roots.add(match[1]);
  }
  return [...roots];
}

/** Where `npm install <packageName> --prefix <nativeDir>` puts a package. */
export function nativePackageFolder(nativeDir: string, packageName: string): string {
  return path.join(nativeDir, 'node_modules', ...packageName.split('/'));
}

function readVersion(packageFolder: string): string | undefined {
  try {
    const json = JSON.parse(fs.readFileSync(path.join(packageFolder, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof json.version === 'string' ? json.version : undefined;
  } catch {
    return undefined;
  }
}

/** Why a native package in a folder cannot be used: thrown by `loadNativePackage`. */
export class NativeLoadError extends Error {
  constructor(message: string, readonly notInstalled = false) {
    super(message);
    this.name = 'NativeLoadError';
  }
}

/**
 * Loads `packageName` from `nativeDir/node_modules`, sharing the engine's tfjs. Throws a
 * NativeLoadError saying why when the package is missing, has another version than the engine's
 * tfjs (`engineVersion`), fails to load (a missing libtensorflow, a wrong platform), or brought a
 * second tfjs-core into the process anyway.
 */
export function loadNativePackage(nativeDir: string, packageName: string, engineVersion: string): unknown {
  const folder = nativePackageFolder(nativeDir, packageName);
  const version = readVersion(folder);
  if (version === undefined) throw new NativeLoadError(`${packageName} is not installed in ${nativeDir}`, true);
  if (version !== engineVersion) {
    throw new NativeLoadError(`${nativeDir} has ${packageName} ${version}, but this PaS runs tfjs ${engineVersion} (install ${packageName}@${engineVersion})`);
  }
  shareEngineTfjsWith(nativeDir);
  let loaded: unknown;
  try {
    // An absolute path: the package is taken from this folder, never from wherever else Node would look.
    const runtimeRequire: NodeRequire = require;
    loaded = runtimeRequire(folder);
  } catch (error) {
    stopSharingWith(nativeDir);
    const message = ((error as Error).message ?? String(error)).split('\n')[0];
    throw new NativeLoadError(`${packageName} in ${nativeDir} failed to load: ${message}`);
  }
  const copies = loadedTfjsCoreCopies();
  if (copies.length > 1) {
    throw new NativeLoadError(`${packageName} in ${nativeDir} loaded a second @tensorflow/tfjs-core (${copies.join(', ')})`);
  }
  return loaded;
}
