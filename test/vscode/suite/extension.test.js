// In-host checks of the real extension API surface: activation, contributions, the inspector and
// the reparameterize command against the real CLI (dist/cli.js) on a tiny model.
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');

const workspace = process.env.PAS_TEST_WORKSPACE;
const modelUri = vscode.Uri.file(path.join(workspace, 'tiny-repvgg', 'model.json'));

async function waitFor(fn, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('PaS extension (in host)', () => {
  let extension;

  before(async () => {
    extension = vscode.extensions.getExtension('pas-tools.pas-vscode');
    assert.ok(extension, 'extension not found');
    await extension.activate();
  });

  it('registers its commands', async () => {
    const commands = await vscode.commands.getCommands(true);
    for (const id of ['pas.pruneWithPas', 'pas.reparameterize', 'pas.inspect', 'pas.cancelSearch', 'pas.trySample']) {
      assert.ok(commands.includes(id), id);
    }
  });

  it('contributes bounded settings with defaults', () => {
    const config = vscode.workspace.getConfiguration('pas');
    assert.strictEqual(config.get('targetMacsFraction'), 0.5);
    assert.strictEqual(config.get('backend'), 'auto');
    assert.strictEqual(config.get('data'), 'sample');
    const props = extension.packageJSON.contributes.configuration.properties;
    assert.strictEqual(props['pas.targetMacsFraction'].minimum, 0.05);
    assert.strictEqual(props['pas.targetMacsFraction'].maximum, 0.95);
  });

  it('declares the inspector as an optional editor for JSON', () => {
    const editor = extension.packageJSON.contributes.customEditors.find((e) => e.viewType === 'pas.modelInspector');
    assert.strictEqual(editor.priority, 'option');
  });

  it('opens a model.json in the inspector', async () => {
    await vscode.commands.executeCommand('vscode.openWith', modelUri, 'pas.modelInspector');
    await waitFor(() => {
      const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
      return tab && tab.input instanceof vscode.TabInputCustom && tab.input.viewType === 'pas.modelInspector';
    }, 'the inspector tab', 30_000);
  });

  it('reparameterizes next to the model folder, never inside it', async () => {
    // the information message is not awaited by the test: the command resolves after the worker ends
    const done = vscode.commands.executeCommand('pas.reparameterize', modelUri);
    const out = path.join(workspace, 'tiny-repvgg-deployed', 'model.json');
    await waitFor(() => fs.existsSync(out), out, 300_000);
    assert.deepStrictEqual(fs.readdirSync(path.join(workspace, 'tiny-repvgg')).sort(), ['model.json', 'weights.bin']);
    void done;
  });
});
