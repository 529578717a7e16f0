/**
 * Entry point of the PaS extension host side. Everything heavy (tfjs, training, file parsing of
 * models) runs in the `pas` CLI as a child process; this file wires commands, the inspector
 * editor and the search controller, and puts every disposable into `context.subscriptions`.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { ModelInspectorProvider } from './inspectorEditor';
import { checkLayersModel, LayersModelIndex, requireTrust, resolveModelUri } from './modelFiles';
import { NativeBackend } from './nativeBackend/nativeBackendCommands';
import { reparameterizeModel } from './reparameterize';
import { SearchController } from './searchController';
import { WorkerHost } from './workerHost';

export function activate(context: vscode.ExtensionContext): void {
  const host = new WorkerHost(context);
  const searches = new SearchController(context, host, async (modelPath) => void (await reparameterizeModel(host, modelPath)));
  void vscode.commands.executeCommand('setContext', 'pas.searchRunning', false);

  context.subscriptions.push(
    host,
    searches,
    new LayersModelIndex(),
    ModelInspectorProvider.register(context, host),
    NativeBackend.register(context, host),

    vscode.commands.registerCommand('pas.pruneWithPas', async (arg?: unknown) => {
      const uri = await resolveModelUri(arg, 'Prune with PaS: select a TensorFlow.js Layers model.json or an .onnx file');
      if (!uri || !(await requireTrust('Pruning')) || !(await checkLayersModel(uri))) return;
      await searches.launch({ model: uri.fsPath, label: modelLabel(uri) });
    }),

    vscode.commands.registerCommand('pas.trySample', async () => {
      if (!(await requireTrust('Pruning'))) return;
      await searches.launch({ model: 'builtin:default', label: 'sample RepVGG', direct: { data: { kind: 'sample' } } });
    }),

    vscode.commands.registerCommand('pas.reparameterize', async (arg?: unknown) => {
      const uri = await resolveModelUri(arg, 'Reparameterize: select a training-time model.json or .onnx file');
      if (!uri || !(await requireTrust('Reparameterizing')) || !(await checkLayersModel(uri))) return;
      await reparameterizeModel(host, uri.fsPath);
    }),

    vscode.commands.registerCommand('pas.inspect', async (arg?: unknown) => {
      const uri = await resolveModelUri(arg, 'Inspect: select a TensorFlow.js Layers model.json or an .onnx file', true);
      if (!uri) return;
      await vscode.commands.executeCommand('vscode.openWith', uri, ModelInspectorProvider.viewType);
    }),

    vscode.commands.registerCommand('pas.cancelSearch', () => searches.cancelCommand()),
    vscode.commands.registerCommand('pas.showLog', () => host.showLog()),
  );
}

export function deactivate(): void {
  // Subscriptions (including running workers, killed by SearchSession.dispose) are disposed by VS Code.
}

/** `models/net/model.json` -> `net/model.json`: enough to tell panels apart. */
function modelLabel(uri: vscode.Uri): string {
  return `${path.basename(path.dirname(uri.fsPath))}/${path.basename(uri.fsPath)}`;
}
