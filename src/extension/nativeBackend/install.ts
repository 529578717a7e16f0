/**
 * Installs `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node` into a folder the worker can load
 * it from (`--native-dir`): npm installs into a staging folder next to the target, the worker
 * proves it loads, and only then does the staging folder replace the target. A failed, cancelled
 * or unverifiable install leaves the previous one (or none) as it was, so the worker keeps using
 * whatever it used before. Nothing here imports `vscode`.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { NpmCommand } from './npmLocator';

export type NativeVariant = 'gpu' | 'cpu';

export const NATIVE_PACKAGES: Record<NativeVariant, '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'> = {
  gpu: '@tensorflow/tfjs-node-gpu',
  cpu: '@tensorflow/tfjs-node',
};

/** The `--backend` value that forces each variant. */
export const NATIVE_BACKEND_NAMES: Record<NativeVariant, 'node-gpu' | 'node'> = { gpu: 'node-gpu', cpu: 'node' };

/** Platforms the package's install script has a libtensorflow for (its scripts/deps-constants.js). */
const SUPPORTED: Record<NativeVariant, string[]> = {
  gpu: ['linux-x64', 'win32-x64'],
  cpu: ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64'],
};

/** Why this machine cannot use a variant, or undefined when it can. */
export function unsupportedPlatformReason(variant: NativeVariant, platform: string = process.platform, arch: string = process.arch): string | undefined {
  if (SUPPORTED[variant].includes(`${platform}-${arch}`)) return undefined;
  return `${NATIVE_PACKAGES[variant]} has no libtensorflow for ${platform}-${arch} (it supports ${SUPPORTED[variant].join(', ')})`;
}

/**
 * The version of `@tensorflow/tfjs` the engine runs, read from the package the extension ships
 * (node_modules/@tensorflow/tfjs/package.json): the native package must have exactly this version.
 */
export function engineTfjsVersion(extensionRoot: string): string {
  const file = path.join(extensionRoot, 'node_modules', '@tensorflow', 'tfjs', 'package.json');
  const version = (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version;
  if (typeof version !== 'string') throw new Error(`${file} has no version`);
  return version;
}

/**
 * What npm installs: the registry package at the engine's version, or, when `standInDir` is given
 * (tests only: the PAS_NATIVE_PACKAGE_SOURCE environment variable), the tarball there that
 * `npm pack` would name for that package and version.
 */
export function packageSpec(variant: NativeVariant, version: string, standInDir?: string): string {
  const name = NATIVE_PACKAGES[variant];
  if (standInDir) return path.join(standInDir, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`);
  return `${name}@${version}`;
}

export function npmInstallArgs(spec: string, prefix: string, offline = false): string[] {
  return ['install', spec, '--prefix', prefix, '--no-audit', '--no-fund', '--omit=dev', ...(offline ? ['--offline'] : [])];
}

/** Turns npm's output into one sentence a user can act on. */
export function explainNpmFailure(output: string, variant: NativeVariant): string {
  if (/ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|network request|request to https?:\/\/registry/i.test(output)) {
    return 'npm could not reach the package registry (offline, or a proxy is needed: see `npm config get proxy`)';
  }
  if (/storage\.googleapis\.com|libtensorflow/i.test(output) && /error|fail/i.test(output)) {
    return `${NATIVE_PACKAGES[variant]}'s install script could not download libtensorflow (it needs https://storage.googleapis.com)`;
  }
  if (/EBADPLATFORM|Unsupported system|unsupported platform/i.test(output)) {
    return `${NATIVE_PACKAGES[variant]} does not support this platform (${process.platform}-${process.arch})`;
  }
  if (/EACCES|EPERM/.test(output)) return 'npm was denied access to a file (EACCES/EPERM); see the PaS log';
  if (/ENOSPC/.test(output)) return 'no space left on the device (ENOSPC)';
  const errorLines = output.split(/\r?\n/).filter((l) => /^npm (ERR!|error)/.test(l.trim()));
  const meaningful = errorLines.map((l) => l.replace(/^npm (ERR!|error)\s*/, '').trim()).filter((l) => l !== '' && !/complete log|A complete log/i.test(l));
  return meaningful.length > 0 ? `npm failed: ${meaningful.slice(0, 2).join(' ')}` : 'npm failed; see the PaS log';
}

export interface InstallRequest {
  npm: NpmCommand;
  variant: NativeVariant;
  /** The engine's tfjs version (engineTfjsVersion). */
  version: string;
  /** Folder the worker loads from (`--native-dir`); replaced only by a verified install. */
  targetDir: string;
  spec: string;
  offline?: boolean;
  env?: NodeJS.ProcessEnv;
  log(line: string): void;
  signal?: AbortSignal;
  /**
   * Loads the staged install in a worker (e.g. `pas inspect builtin:default --backend node-gpu
   * --native-dir STAGING`); resolves to undefined when it works, or to the reason it does not.
   */
  verify(stagingDir: string): Promise<string | undefined>;
}

export type InstallResult = { ok: true; dir: string } | { ok: false; cancelled: boolean; reason: string };

/** Runs npm; resolves with its exit code and combined output. Abort kills npm's whole process group. */
function runNpm(request: InstallRequest, args: string[]): Promise<{ code: number | null; output: string; cancelled: boolean; spawnError?: string }> {
  return new Promise((resolve) => {
    let output = '';
    let cancelled = false;
    const child = spawn(request.npm.command, [...request.npm.prefixArgs, ...args], {
      env: { ...(request.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
    });
    const onAbort = () => {
      cancelled = true;
      try {
        if (child.pid && process.platform !== 'win32') process.kill(-child.pid, 'SIGTERM');
        else child.kill();
      } catch {
        // already gone
      }
    };
    request.signal?.addEventListener('abort', onAbort, { once: true });
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      for (const line of text.split(/\r?\n/)) if (line.trim() !== '') request.log(line);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (error) => {
      request.signal?.removeEventListener('abort', onAbort);
      resolve({ code: null, output, cancelled, spawnError: error.message });
    });
    child.on('close', (code) => {
      request.signal?.removeEventListener('abort', onAbort);
      resolve({ code, output, cancelled });
    });
  });
}

function uniqueSibling(target: string, tag: string): string {
  return `${target}.${tag}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Removes `.staging-*` and `.old-*` leftovers of an earlier interrupted install next to `target`. */
function removeLeftovers(target: string): void {
  const parent = path.dirname(target);
  const base = path.basename(target);
  for (const entry of fs.existsSync(parent) ? fs.readdirSync(parent) : []) {
    if (entry.startsWith(`${base}.staging-`) || entry.startsWith(`${base}.old-`)) {
      fs.rmSync(path.join(parent, entry), { recursive: true, force: true });
    }
  }
}

/** Installs, verifies and swaps in the native package; see the file comment. */
export async function installNativeBackend(request: InstallRequest): Promise<InstallResult> {
  const packageName = NATIVE_PACKAGES[request.variant];
  fs.mkdirSync(path.dirname(request.targetDir), { recursive: true });
  removeLeftovers(request.targetDir);
  const staging = uniqueSibling(request.targetDir, 'staging');
  fs.mkdirSync(staging);
  // A package.json of its own, so npm installs here and not into an enclosing project.
  fs.writeFileSync(path.join(staging, 'package.json'), JSON.stringify({ name: 'pas-native-backend', private: true, description: `${packageName} for the PaS worker` }, null, 2) + '\n');
  const fail = (reason: string, cancelled = false): InstallResult => {
    fs.rmSync(staging, { recursive: true, force: true });
    return { ok: false, cancelled, reason };
  };

  const args = npmInstallArgs(request.spec, staging, request.offline);
  request.log(`$ ${[request.npm.command, ...request.npm.prefixArgs, ...args].join(' ')}`);
  const npm = await runNpm(request, args);
  if (npm.cancelled || request.signal?.aborted) return fail('cancelled', true);
  if (npm.spawnError) return fail(`could not run npm (${request.npm.description}): ${npm.spawnError}`);
  if (npm.code !== 0) return fail(explainNpmFailure(npm.output, request.variant));

  let installedVersion: string | undefined;
  try {
    const manifest = path.join(staging, 'node_modules', ...packageName.split('/'), 'package.json');
    installedVersion = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version?: string }).version;
  } catch {
    return fail(`npm finished but ${packageName} is not in ${staging}`);
  }
  if (installedVersion !== request.version) return fail(`npm installed ${packageName} ${installedVersion}, but the engine runs tfjs ${request.version}`);

  request.log(`checking that the worker loads ${packageName} from the new install...`);
  const problem = await request.verify(staging);
  if (request.signal?.aborted) return fail('cancelled', true);
  if (problem !== undefined) return fail(problem);

  // Swap: the old install moves aside first, so the target is never a half-replaced folder.
  const old = uniqueSibling(request.targetDir, 'old');
  if (fs.existsSync(request.targetDir)) fs.renameSync(request.targetDir, old);
  fs.renameSync(staging, request.targetDir);
  fs.rmSync(old, { recursive: true, force: true });
  return { ok: true, dir: request.targetDir };
}

/** Which native package a folder holds (GPU first, as the worker's ladder tries it), if any. */
export function installedVariant(dir: string): NativeVariant | undefined {
  for (const variant of ['gpu', 'cpu'] as const) {
    if (fs.existsSync(path.join(dir, 'node_modules', ...NATIVE_PACKAGES[variant].split('/'), 'package.json'))) return variant;
  }
  return undefined;
}

/**
 * The folder the worker loads a native package from (PAS_NATIVE_DIR): the `pas.nativeBackendDir`
 * setting when set, else the command's managed install when it holds a package, else none.
 */
export function workerNativeDir(configured: string | undefined, managedDir: string): string | undefined {
  const setting = configured?.trim();
  if (setting) return setting;
  return installedVariant(managedDir) ? managedDir : undefined;
}

/** Removes an install made by `installNativeBackend` (and any leftovers next to it). */
export function removeNativeBackend(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  removeLeftovers(dir);
}

export interface WorkerProbe {
  /** Node.js (or the editor's runtime with ELECTRON_RUN_AS_NODE=1) and the CLI bundle. */
  executable: string;
  cliPath: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * Verifies an install the way the worker will use it: `pas inspect builtin:default --backend
 * node(-gpu) --native-dir DIR --json` must exit 0. Resolves to undefined, or to the worker's reason.
 */
export function verifyWithWorker(probe: WorkerProbe, variant: NativeVariant, dir: string): Promise<string | undefined> {
  const args = [probe.cliPath, 'inspect', 'builtin:default', '--backend', NATIVE_BACKEND_NAMES[variant], '--native-dir', dir, '--json'];
  return new Promise((resolve) => {
    const child = spawn(probe.executable, args, { env: { ...(probe.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), probe.timeoutMs ?? 120_000);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve(`the worker could not start: ${error.message}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(undefined);
      const errorEvent = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          try {
            return JSON.parse(l) as { type?: string; message?: string };
          } catch {
            return {};
          }
        })
        .find((e) => e.type === 'error');
      const lastStderr = stderr.trim().split('\n').pop();
      resolve(errorEvent?.message ?? lastStderr ?? `the worker exited with ${signal ?? code}`);
    });
  });
}
