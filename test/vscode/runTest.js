#!/usr/bin/env node
// In-host tests with @vscode/test-electron: downloads VS Code (so it needs internet; it does not
// run on the project's offline machines, where test/e2e/ covers the same ground in code-server),
// starts it with this folder as the extension under development and runs suite/index.js inside the
// extension host, on a temp workspace holding a tiny model.json.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { runTests } = require('@vscode/test-electron');

async function main() {
  const root = path.resolve(__dirname, '..', '..');
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'pas-vscode-test-'));
  const made = spawnSync(process.execPath, [path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(root, 'test', 'e2e', 'make-model.ts'), path.join(workspace, 'tiny-repvgg')], { stdio: 'inherit' });
  if (made.status !== 0) throw new Error('could not create the test model');
  fs.mkdirSync(path.join(workspace, 'broken'));
  fs.writeFileSync(path.join(workspace, 'broken', 'model.json'), '{"modelTopology": {');
  try {
    await runTests({
      version: process.env.VSCODE_TEST_VERSION || 'stable',
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(__dirname, 'suite', 'index.js'),
      launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
      extensionTestsEnv: { PAS_TEST_WORKSPACE: workspace },
    });
  } finally {
    fs.rmSync(workspace, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
