/**
 * The "PaS: Set Up Native Backend" / "Remove Native Backend" commands' flow outside VS Code: a
 * minimal stand-in for the `vscode` module answers the quick pick and records the messages; the
 * install itself is real (npm, offline, from stand-in tarballs via PAS_NATIVE_PACKAGE_SOURCE, the
 * tests-only source the e2e case uses) and verified by the real worker.
 */
import * as assert from 'assert';
import * as fs from 'fs';
import Module from 'module';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { CLI, REPO_ROOT } from '../support/cli';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const standIn = require('../support/native-stand-in.js') as {
  buildStandInTarball(o: { workDir: string; packageName: string; version: string; broken?: boolean }): string;
};

type QuickPickItem = { label: string; action: string };

const ui = {
  pick: (_items: QuickPickItem[]): QuickPickItem | undefined => undefined,
  pickOptions: undefined as { ignoreFocusOut?: boolean } | undefined,
  info: [] as string[],
  errors: [] as string[],
  settings: {} as Record<string, unknown>,
  commands: new Map<string, () => Promise<void>>(),
};

const fakeVscode = {
  window: {
    showQuickPick: async (items: QuickPickItem[], options?: { ignoreFocusOut?: boolean }) => {
      ui.pickOptions = options;
      return ui.pick(items);
    },
    showInformationMessage: async (message: string) => void ui.info.push(message),
    showErrorMessage: async (message: string) => void ui.errors.push(message),
    withProgress: async (_options: unknown, task: (progress: unknown, token: unknown) => Promise<unknown>) =>
      task({ report: () => undefined }, { isCancellationRequested: false, onCancellationRequested: () => ({ dispose: () => undefined }) }),
  },
  workspace: { getConfiguration: () => ({ get: (key: string, fallback: unknown) => ui.settings[key] ?? fallback }) },
  commands: {
    registerCommand: (id: string, run: () => Promise<void>) => {
      ui.commands.set(id, run);
      return { dispose: () => ui.commands.delete(id) };
    },
    executeCommand: async () => undefined,
  },
  ProgressLocation: { Notification: 15 },
};

describe('native backend commands (vscode stand-in, real npm and worker)', function () {
  this.timeout(300_000);
  const moduleInternals = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const originalLoad = moduleInternals._load;
  const savedSource = process.env.PAS_NATIVE_PACKAGE_SOURCE;
  let work: string;
  let goodSource: string;
  let brokenSource: string;
  let host: { executable: string; cliPath: string; output: { info(l: string): void; error(l: string): void }; showLog(): void; nativeDir?: () => string | undefined };
  let native: { managedDir: string; dispose(): void };

  before(() => {
    moduleInternals._load = function (request: string, ...rest: unknown[]) {
      return request === 'vscode' ? fakeVscode : originalLoad.call(this, request, ...rest);
    };
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-native-cmd-'));
    goodSource = path.join(work, 'good');
    brokenSource = path.join(work, 'broken');
    fs.mkdirSync(goodSource);
    fs.mkdirSync(brokenSource);
    const version = tf.version.tfjs;
    standIn.buildStandInTarball({ workDir: goodSource, packageName: '@tensorflow/tfjs-node', version });
    // named like the real package, so the command picks it up as the GPU package
    const broken = standIn.buildStandInTarball({ workDir: brokenSource, packageName: '@tensorflow/tfjs-node-gpu', version, broken: true });
    fs.renameSync(broken, broken.replace(/-broken\.tgz$/, '.tgz'));

    host = { executable: process.execPath, cliPath: CLI, output: { info: () => undefined, error: () => undefined }, showLog: () => undefined };
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { NativeBackend } = require('../../src/extension/nativeBackend/nativeBackendCommands');
    const context = { extensionPath: REPO_ROOT, globalStorageUri: { fsPath: path.join(work, 'global-storage') } };
    native = NativeBackend.register(context, host);
  });

  after(() => {
    native?.dispose();
    moduleInternals._load = originalLoad;
    if (savedSource === undefined) delete process.env.PAS_NATIVE_PACKAGE_SOURCE;
    else process.env.PAS_NATIVE_PACKAGE_SOURCE = savedSource;
    fs.rmSync(work, { recursive: true, force: true });
  });

  beforeEach(() => {
    ui.info = [];
    ui.errors = [];
  });

  const run = (id: string) => ui.commands.get(id)!();

  it('installs the CPU package into global storage and hands its folder to the worker', async () => {
    process.env.PAS_NATIVE_PACKAGE_SOURCE = goodSource;
    let offered: string[] = [];
    ui.pick = (items) => {
      offered = items.map((i) => i.action);
      return items.find((i) => i.action === 'cpu');
    };
    assert.strictEqual(host.nativeDir?.(), undefined);
    await run('pas.setUpNativeBackend');
    assert.deepStrictEqual(offered, ['gpu', 'cpu']);
    assert.strictEqual(ui.pickOptions?.ignoreFocusOut, true, 'the pick starts an install: moving focus must not dismiss it');
    assert.deepStrictEqual(ui.errors, []);
    assert.match(ui.info.join('\n'), /@tensorflow\/tfjs-node is installed/);
    assert.strictEqual(host.nativeDir?.(), native.managedDir);
    assert.ok(fs.existsSync(path.join(native.managedDir, 'node_modules', '@tensorflow', 'tfjs-node', 'package.json')));
  });

  it('a GPU package that does not load is not installed: one message says why, the CPU install stays', async () => {
    process.env.PAS_NATIVE_PACKAGE_SOURCE = brokenSource;
    let offered: string[] = [];
    ui.pick = (items) => {
      offered = items.map((i) => i.action);
      return items.find((i) => i.action === 'gpu');
    };
    await run('pas.setUpNativeBackend');
    assert.deepStrictEqual(offered, ['gpu', 'cpu', 'remove']);
    assert.strictEqual(ui.errors.length, 1);
    assert.match(ui.errors[0], /@tensorflow\/tfjs-node-gpu was not installed: .*libtensorflow\.so\.2: cannot open shared object file.*Searches keep using the installed @tensorflow\/tfjs-node\./);
    assert.ok(fs.existsSync(path.join(native.managedDir, 'node_modules', '@tensorflow', 'tfjs-node', 'package.json')));
  });

  it('says clearly when there is no npm', async () => {
    const savedPath = process.env.PATH;
    const savedExecutable = host.executable;
    process.env.PATH = '';
    host.executable = path.join(work, 'no-node-here', 'node');
    ui.pick = (items) => items.find((i) => i.action === 'cpu');
    try {
      await run('pas.setUpNativeBackend');
    } finally {
      process.env.PATH = savedPath;
      host.executable = savedExecutable;
    }
    assert.strictEqual(ui.errors.length, 1);
    assert.match(ui.errors[0], /npm was not found/);
    assert.strictEqual(host.nativeDir?.(), native.managedDir, 'the previous install must stay in use');
  });

  it('pas.nativeBackendDir takes precedence and the command does not install over it', async () => {
    ui.settings['nativeBackendDir'] = path.join(work, 'elsewhere');
    ui.pick = () => assert.fail('no quick pick expected');
    try {
      await run('pas.setUpNativeBackend');
      assert.strictEqual(host.nativeDir?.(), path.join(work, 'elsewhere'));
      assert.match(ui.info.join('\n'), /pas\.nativeBackendDir/);
    } finally {
      delete ui.settings['nativeBackendDir'];
    }
  });

  it('Remove Native Backend removes it and the worker goes back to the ladder without a folder', async () => {
    await run('pas.removeNativeBackend');
    assert.match(ui.info.join('\n'), /removed @tensorflow\/tfjs-node/);
    assert.ok(!fs.existsSync(native.managedDir));
    assert.strictEqual(host.nativeDir?.(), undefined);
  });
});
