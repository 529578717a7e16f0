/**
 * The native backend path without the real binaries: stand-ins named @tensorflow/tfjs-node(-gpu)
 * (test/support/native-stand-in.js) installed the way "PaS: Set Up Native Backend" installs
 * (installNativeBackend: npm install <tarball> --prefix, offline here), then loaded by the real
 * worker (dist/cli.js) through --native-dir / PAS_NATIVE_DIR.
 */
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { explainNpmFailure, installedVariant, installNativeBackend, packageSpec, removeNativeBackend, unsupportedPlatformReason, verifyWithWorker, workerNativeDir, type NativeVariant } from '../../src/extension/nativeBackend/install';
import { findNpm, type NpmCommand } from '../../src/extension/nativeBackend/npmLocator';
import type { StartEvent } from '../../src/shared/workerProtocol';
import { CLI, parseEvents, REPO_ROOT } from '../support/cli';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const standIn = require('../support/native-stand-in.js') as {
  buildStandInTarball(o: { workDir: string; packageName: string; version: string; broken?: boolean }): string;
  installTarball(tarball: string, dir: string): void;
};

const VERSION = tf.version.tfjs;
const ENGINE_TFJS_CORE = path.join(REPO_ROOT, 'node_modules', '@tensorflow', 'tfjs-core');
const NPM: NpmCommand = { command: 'npm', prefixArgs: [], description: 'npm on PATH' };

interface StandInReport {
  package: string;
  calls: number;
  gradientCalls: number;
  backend: string;
  tfjsCoreCopies: string[];
}

function runWorker(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: REPO_ROOT,
    timeout: 300_000,
    env: { ...process.env, PAS_NATIVE_DIR: '', ...env },
  });
  return { ...result, events: parseEvents(result.stdout) };
}

describe('native backend from an install folder (stand-in packages)', function () {
  this.timeout(300_000);
  let work: string;
  let tarballs: Record<NativeVariant, string>;
  let brokenGpuTarball: string;

  const install = (variant: NativeVariant, targetDir: string, spec = packageSpec(variant, VERSION, work), signal?: AbortSignal, npm = NPM) =>
    installNativeBackend({
      npm,
      variant,
      version: VERSION,
      targetDir,
      spec,
      offline: true,
      log: () => undefined,
      signal,
      verify: (staging) => verifyWithWorker({ executable: process.execPath, cliPath: CLI }, variant, staging),
    });

  before(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-native-'));
    tarballs = {
      cpu: standIn.buildStandInTarball({ workDir: work, packageName: '@tensorflow/tfjs-node', version: VERSION }),
      gpu: standIn.buildStandInTarball({ workDir: work, packageName: '@tensorflow/tfjs-node-gpu', version: VERSION }),
    };
    brokenGpuTarball = standIn.buildStandInTarball({ workDir: work, packageName: '@tensorflow/tfjs-node-gpu', version: VERSION, broken: true });
  });

  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('names the tarballs the way the set-up command looks for them', () => {
    assert.strictEqual(packageSpec('cpu', VERSION, work), tarballs.cpu);
    assert.strictEqual(packageSpec('gpu', VERSION, work), tarballs.gpu);
    assert.strictEqual(packageSpec('gpu', VERSION), `@tensorflow/tfjs-node-gpu@${VERSION}`);
  });

  it('the stand-in really brings its own tfjs copies: loaded without sharing, it fails', () => {
    const dir = path.join(work, 'plain');
    standIn.installTarball(tarballs.cpu, dir);
    const result = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, 'node_modules', '@tensorflow', 'tfjs-node'))})`], { encoding: 'utf8' });
    assert.notStrictEqual(result.status, 0);
    assert.match(result.stderr, /a second copy of @tensorflow\/tfjs was loaded/);
  });

  it('installs the CPU package, and the worker picks it over wasm and trains through it with one tfjs-core', async () => {
    const dir = path.join(work, 'native-backend');
    const result = await install('cpu', dir);
    assert.deepStrictEqual(result, { ok: true, dir });
    assert.strictEqual(installedVariant(dir), 'cpu');
    assert.deepStrictEqual(fs.readdirSync(work).filter((f) => f.includes('.staging-') || f.includes('.old-')), []);

    const reportFile = path.join(work, 'stand-in-report.json');
    const out = path.join(work, 'search-out');
    const run = runWorker(
      ['search', 'builtin:default', '--data', 'sample', '--pretrain-epochs', '0', '--search-epochs', '1', '--finetune-epochs', '0',
        '--max-train', '16', '--max-test', '8', '--batch-size', '8', '--out', out, '--json'],
      { PAS_NATIVE_DIR: dir, PAS_STAND_IN_REPORT: reportFile },
    );
    assert.strictEqual(run.status, 0, run.stderr);
    const start = run.events.find((e) => e.type === 'start') as StartEvent;
    assert.strictEqual(start.backend, 'node');
    assert.match(start.backendNote ?? '', /@tensorflow\/tfjs-node-gpu is not installed in/);
    assert.match(run.stderr, /backend: node/);
    const done = run.events.find((e) => e.type === 'done');
    assert.ok(done && done.type === 'done' && done.report?.backend === 'node');

    const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as StandInReport;
    assert.strictEqual(report.package, '@tensorflow/tfjs-node');
    assert.strictEqual(report.backend, 'tensorflow');
    assert.ok(report.calls > 0, 'no kernel ran on the stand-in backend');
    assert.ok(report.gradientCalls > 0, 'no gradient kernel ran on the stand-in backend: training did not go through it');
    assert.deepStrictEqual(report.tfjsCoreCopies, [fs.realpathSync(ENGINE_TFJS_CORE)]);
  });

  it('reinstalling as GPU replaces the CPU install, and auto picks node-gpu', async () => {
    const dir = path.join(work, 'native-backend');
    assert.deepStrictEqual(await install('gpu', dir), { ok: true, dir });
    assert.strictEqual(installedVariant(dir), 'gpu');
    assert.ok(!fs.existsSync(path.join(dir, 'node_modules', '@tensorflow', 'tfjs-node')), 'the CPU package is still there');
    const run = runWorker(['inspect', 'builtin:default', '--native-dir', dir, '--json']);
    assert.strictEqual(run.status, 0, run.stderr);
    assert.match(run.stderr, /^backend: node-gpu/m);
    const start = run.events.find((e) => e.type === 'start') as StartEvent;
    assert.strictEqual(start.backend, 'node-gpu');
    assert.strictEqual(start.backendNote, undefined);
    const noGpu = runWorker(['inspect', 'builtin:default', '--native-dir', dir, '--json'], { PAS_STAND_IN_NO_GPU: '1' });
    assert.match(noGpu.stderr, /^backend: node-gpu/m);
    assert.match((noGpu.events.find((e) => e.type === 'start') as StartEvent).backendNote ?? '', /tfjs-node-gpu found no usable GPU .* computes on the CPU/);
  });

  it('a broken package fails the install with the reason and leaves the previous install working', async () => {
    const dir = path.join(work, 'native-backend');
    const result = await install('gpu', dir, brokenGpuTarball);
    assert.strictEqual(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /libtensorflow\.so\.2: cannot open shared object file/);
    assert.strictEqual(installedVariant(dir), 'gpu');
    assert.strictEqual(runWorker(['inspect', 'builtin:default', '--backend', 'node-gpu', '--native-dir', dir, '--json']).status, 0);
  });

  it('a broken install in the folder falls back to wasm, and says why in the start event and on stderr', () => {
    const dir = path.join(work, 'broken');
    standIn.installTarball(brokenGpuTarball, dir);
    const run = runWorker(['inspect', 'builtin:default', '--json'], { PAS_NATIVE_DIR: dir });
    assert.strictEqual(run.status, 0, run.stderr);
    assert.match(run.stderr, /^backend: wasm/m);
    const start = run.events.find((e) => e.type === 'start') as StartEvent;
    assert.strictEqual(start.backend, 'wasm');
    const note = start.backendNote ?? '';
    assert.match(note, /backend 'node-gpu': @tensorflow\/tfjs-node-gpu in .*broken failed to load: libtensorflow\.so\.2: cannot open shared object file/);
    assert.match(note, /backend 'node': @tensorflow\/tfjs-node is not installed in/);
    assert.match(run.stderr, /backend notes: .*libtensorflow\.so\.2/);
  });

  it('refuses a native package of another version than the engine', () => {
    const dir = path.join(work, 'other-version');
    fs.cpSync(path.join(work, 'plain'), dir, { recursive: true });
    const manifest = path.join(dir, 'node_modules', '@tensorflow', 'tfjs-node', 'package.json');
    fs.writeFileSync(manifest, JSON.stringify({ ...JSON.parse(fs.readFileSync(manifest, 'utf8')), version: '4.0.0' }));
    const run = runWorker(['inspect', 'builtin:default', '--backend', 'node', '--native-dir', dir, '--json']);
    assert.notStrictEqual(run.status, 0);
    assert.match(run.stderr, new RegExp(`@tensorflow/tfjs-node 4\\.0\\.0, but this PaS runs tfjs ${VERSION.replace(/\./g, '\\.')}`));
  });

  it('a --native-dir that does not exist is an input error (exit 2) naming the folder', () => {
    const missing = path.join(work, 'no-such-folder');
    const run = runWorker(['inspect', 'builtin:default', '--native-dir', missing]);
    assert.strictEqual(run.status, 2);
    assert.match(run.stderr, new RegExp(`${missing.replace(/[/\\]/g, '.')}: the native backend folder`));
  });

  it('cancelling stops npm and leaves no staging folder and the previous install in place', async () => {
    const dir = path.join(work, 'native-backend');
    const hangingNpm: NpmCommand = { command: process.execPath, prefixArgs: ['-e', 'setTimeout(() => {}, 60000)', '--'], description: 'a hanging npm' };
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const result = await install('cpu', dir, tarballs.cpu, controller.signal, hangingNpm);
    assert.deepStrictEqual(result, { ok: false, cancelled: true, reason: 'cancelled' });
    assert.ok(Date.now() - started < 30_000);
    assert.strictEqual(installedVariant(dir), 'gpu');
    assert.deepStrictEqual(fs.readdirSync(work).filter((f) => f.includes('.staging-')), []);
  });

  it('the worker gets the setting, else the managed install only while it holds a package', () => {
    const dir = path.join(work, 'native-backend');
    assert.strictEqual(workerNativeDir(undefined, dir), dir);
    assert.strictEqual(workerNativeDir('  /opt/tfjs-native ', dir), '/opt/tfjs-native');
    assert.strictEqual(workerNativeDir('', path.join(work, 'never-installed')), undefined);
  });

  it('remove deletes the install', () => {
    const dir = path.join(work, 'native-backend');
    removeNativeBackend(dir);
    assert.ok(!fs.existsSync(dir));
    assert.strictEqual(installedVariant(dir), undefined);
    assert.strictEqual(workerNativeDir(undefined, dir), undefined);
  });
});

describe('native backend set-up helpers', () => {
  it('finds npm next to the worker node, then on PATH, and reports none', () => {
    const files = new Set(['/opt/node/lib/node_modules/npm/bin/npm-cli.js', '/usr/bin/npm']);
    const isFile = (f: string) => files.has(f);
    assert.deepStrictEqual(findNpm({ nodeExecutable: '/opt/node/bin/node', pathVariable: '/usr/bin', platform: 'linux', isFile }), {
      command: '/opt/node/bin/node',
      prefixArgs: ['/opt/node/lib/node_modules/npm/bin/npm-cli.js'],
      description: 'npm next to /opt/node/bin/node',
    });
    assert.strictEqual(findNpm({ nodeExecutable: '/usr/share/code/code', pathVariable: '/bin:/usr/bin', platform: 'linux', isFile })?.command, '/usr/bin/npm');
    assert.strictEqual(findNpm({ nodeExecutable: '/usr/share/code/code', pathVariable: '/bin', platform: 'linux', isFile }), undefined);
    const winFiles = new Set(['C:\\node\\node.exe', 'C:\\node\\node_modules\\npm\\bin\\npm-cli.js']);
    const win = findNpm({ nodeExecutable: 'C:\\code\\Code.exe', pathVariable: 'C:\\Windows;C:\\node', platform: 'win32', isFile: (f) => winFiles.has(f) });
    assert.deepStrictEqual(win && [win.command, ...win.prefixArgs], ['C:\\node\\node.exe', 'C:\\node\\node_modules\\npm\\bin\\npm-cli.js']);
  });

  it('explains npm failures in one sentence', () => {
    assert.match(explainNpmFailure('npm error code ENOTFOUND\nnpm error request to https://registry.npmjs.org/x failed', 'gpu'), /could not reach the package registry/);
    assert.match(explainNpmFailure('npm error code 1\nnpm error Error: connect ETIMEDOUT storage.googleapis.com', 'gpu'), /registry|libtensorflow/);
    assert.match(explainNpmFailure('Error: Unsupported system: gpu-darwin-arm64', 'gpu'), /does not support this platform/);
    assert.match(explainNpmFailure('npm error code E404\nnpm error 404 Not Found - GET https://x/y', 'cpu'), /^npm failed: code E404 404 Not Found/);
  });

  it('knows where the GPU package has a libtensorflow', () => {
    assert.strictEqual(unsupportedPlatformReason('gpu', 'linux', 'x64'), undefined);
    assert.match(unsupportedPlatformReason('gpu', 'darwin', 'arm64') ?? '', /no libtensorflow for darwin-arm64/);
    assert.strictEqual(unsupportedPlatformReason('cpu', 'darwin', 'arm64'), undefined);
  });
});
