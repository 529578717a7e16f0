/**
 * `pas.modelInspector`: a read-only custom editor for model.json and .onnx files (priority "option", so it
 * never replaces the JSON editor). Opening runs `cli inspect --json` with a timeout and shows the
 * per-layer table of the training-time and deployed forms; a bad file shows its error in the
 * editor. The file is re-inspected when it changes on disk.
 */
import * as vscode from 'vscode';
import { WEBVIEW_PROTOCOL_VERSION, type InspectorInitMessage } from '../shared/webviewProtocol';
import { buildInspectArgs } from './core/cliArgs';
import { validateWebviewMessage } from './core/webviewMessages';
import { MODEL_INSPECTOR_VIEW_TYPE } from './viewTypes';
import { renderWebviewHtml, webviewOptions } from './webviewHtml';
import type { WorkerHost } from './workerHost';

const INSPECT_TIMEOUT_MS = 60_000;
/** Timing a large model (RepVGG-A0 at 224: ~1 s a pass on wasm) whole and per layer, 20 runs. */
const LATENCY_TIMEOUT_MS = 300_000;

class ModelDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

export class ModelInspectorProvider implements vscode.CustomReadonlyEditorProvider<ModelDocument> {
  static readonly viewType = MODEL_INSPECTOR_VIEW_TYPE;

  static register(context: vscode.ExtensionContext, host: WorkerHost): vscode.Disposable {
    return vscode.window.registerCustomEditorProvider(ModelInspectorProvider.viewType, new ModelInspectorProvider(context, host), {
      supportsMultipleEditorsPerDocument: true,
    });
  }

  private constructor(private readonly context: vscode.ExtensionContext, private readonly host: WorkerHost) {}

  openCustomDocument(uri: vscode.Uri): ModelDocument {
    return new ModelDocument(uri);
  }

  resolveCustomEditor(document: ModelDocument, panel: vscode.WebviewPanel): void {
    const extensionUri = this.context.extensionUri;
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = renderWebviewHtml(panel.webview, extensionUri, 'inspector', 'PaS Model Inspector');
    const file = vscode.workspace.asRelativePath(document.uri);
    let state: InspectorInitMessage['state'] = { kind: 'loading' };
    let disposed = false;
    let generation = 0;
    const send = () => {
      if (disposed) return;
      const message: InspectorInitMessage = { type: 'init', view: 'inspector', protocol: WEBVIEW_PROTOCOL_VERSION, file, state, canSearch: vscode.workspace.isTrusted };
      void panel.webview.postMessage(message);
    };
    const inspect = (latency = false) => {
      const mine = ++generation;
      state = { kind: 'loading' };
      send();
      if (document.uri.scheme !== 'file') {
        state = { kind: 'error', message: 'The inspector reads files on disk only.' };
        return send();
      }
      const run = this.host.start(buildInspectArgs(document.uri.fsPath, { latency }), {
        onEvent: (e) => {
          if (e.type === 'inspect' && mine === generation) state = { kind: 'report', report: e.report };
        },
      }, { timeoutMs: latency ? LATENCY_TIMEOUT_MS : INSPECT_TIMEOUT_MS });
      void run.outcome.then((o) => {
        if (mine !== generation) return;
        if (o.kind === 'error') state = { kind: 'error', message: o.event.message };
        else if (o.kind !== 'done') state = { kind: 'error', message: 'reason' in o ? o.reason : `the inspection was ${o.kind}` };
        else if (state.kind !== 'report') state = { kind: 'error', message: 'The worker finished without a report.' };
        send();
      });
      runs.push(run);
    };
    const runs: Array<{ kill(): void }> = [];
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.joinPath(document.uri, '..'), document.uri.path.split('/').pop()!));
    const subs: vscode.Disposable[] = [
      watcher,
      watcher.onDidChange(() => inspect()),
      watcher.onDidCreate(() => inspect()),
      panel.webview.onDidReceiveMessage((raw) => {
        const v = validateWebviewMessage(raw);
        if (!v.ok) return this.host.output.warn(`inspector: ignored message (${v.reason})`);
        switch (v.message.type) {
          case 'ready':
            return send();
          case 'startSearch':
            return void vscode.commands.executeCommand('pas.pruneWithPas', document.uri);
          case 'reparameterize':
            return void vscode.commands.executeCommand('pas.reparameterize', document.uri);
          case 'measureLatency':
            return inspect(true);
          case 'open':
            if (v.message.target === 'log') this.host.showLog();
            return;
          default:
            return this.host.output.warn(`inspector: ignored "${v.message.type}"`);
        }
      }),
      panel.onDidDispose(() => {
        disposed = true;
        for (const r of runs) r.kill();
        for (const s of subs) s.dispose();
      }),
    ];
    inspect();
  }
}
