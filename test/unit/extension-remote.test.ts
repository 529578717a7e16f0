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
