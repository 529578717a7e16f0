import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { workerLaunch } from '../../src/extension/core/workerLaunch';
import { REPO_ROOT } from '../support/cli';

describe('the worker runs where the workspace lives (VS Code Remote)', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));

  it('declares extensionKind workspace only, so the host (and the worker) run on the remote machine', () => {
    assert.deepEqual(manifest.extensionKind, ['workspace']);
    assert.ok(!('browser' in manifest), 'a web-worker entry would run the extension on the UI side');
  });

  it("starts the CLI from the extension host's own folder and executable, never a UI-side path", () => {
    const extensionPath = '/home/remote-user/.vscode-server/extensions/pas-tools.pas-vscode-0.1.0';
    const launch = workerLaunch({ extensionPath, hostExecutable: '/home/remote-user/.vscode-server/bin/abc/node', configuredNode: '', env: { PATH: '/usr/bin' }, args: ['search', 'builtin:default', '--json'] });
    assert.equal(launch.executable, '/home/remote-user/.vscode-server/bin/abc/node');
    assert.equal(launch.args[0], path.join(extensionPath, 'dist', 'cli.js'));
    assert.deepEqual(launch.args.slice(1), ['search', 'builtin:default', '--json']);
    assert.equal(launch.cwd, extensionPath);
    assert.equal(launch.env.ELECTRON_RUN_AS_NODE, '1');
    assert.equal(launch.env.PATH, '/usr/bin');
  });

  it('uses pas.nodePath when set (e.g. a Node with @tensorflow/tfjs-node-gpu on the remote host)', () => {
    const launch = workerLaunch({ extensionPath: '/ext', hostExecutable: '/host/node', configuredNode: ' /opt/node20/bin/node ', env: {}, args: [] });
    assert.equal(launch.executable, '/opt/node20/bin/node');
  });

  it('the manifest entry and the bundled worker files sit under the extension folder', () => {
    assert.equal(manifest.main, './dist/extension.js');
    for (const file of ['cli.js', 'replicaWorker.js']) assert.ok(fs.existsSync(path.join(REPO_ROOT, 'dist', file)), `dist/${file} is not built`);
  });
});

describe('host arguments and messages for workers and latency', () => {
  // Imported here so the describe above stays about the launch.
  const { buildInspectArgs, buildSearchArgs } = require('../../src/extension/core/cliArgs') as typeof import('../../src/extension/core/cliArgs');
  const { validateWebviewMessage } = require('../../src/extension/core/webviewMessages') as typeof import('../../src/extension/core/webviewMessages');
  const base = { model: 'builtin:default', data: { kind: 'sample' as const }, targetFraction: 0.5, searchEpochs: 1, finetuneEpochs: 1 };

  it('passes pas.workers as --workers (auto or a count) and rejects a bad count', () => {
    const auto = buildSearchArgs({ ...base, workers: 'auto' });
    assert.deepEqual(auto.slice(auto.indexOf('--workers'), auto.indexOf('--workers') + 2), ['--workers', 'auto']);
    const two = buildSearchArgs({ ...base, workers: 2 });
    assert.deepEqual(two.slice(two.indexOf('--workers'), two.indexOf('--workers') + 2), ['--workers', '2']);
    assert.ok(!buildSearchArgs(base).includes('--workers'));
    assert.throws(() => buildSearchArgs({ ...base, workers: 0 }), RangeError);
  });

  it('"Measure latency" runs inspect --latency; the message carries nothing else', () => {
    assert.deepEqual(buildInspectArgs('/m/model.json', { latency: true }), ['inspect', '/m/model.json', '--latency', '--json']);
    assert.deepEqual(validateWebviewMessage({ type: 'measureLatency' }), { ok: true, message: { type: 'measureLatency' } });
    assert.equal(validateWebviewMessage({ type: 'measureLatency', batch: 64 }).ok, false);
  });
});
