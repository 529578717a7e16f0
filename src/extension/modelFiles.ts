/**
 * Finding and checking the model file a command acts on: the explorer's selection, the active
 * inspector or JSON editor, or a file picker; and the `pas.layersModelFiles` context key that lets
 * the explorer menu show PaS commands on Layers models not named model.json.
 */
import * as fs from 'fs';
import * as vscode from 'vscode';
import { detectLayersModel, MAX_MODEL_JSON_BYTES } from './core/modelDetection';
import { MODEL_INSPECTOR_VIEW_TYPE } from './viewTypes';

/** Reads and checks a model file; shows a clear error and returns false when it is not a Layers model. */
export async function checkLayersModel(uri: vscode.Uri): Promise<boolean> {
  // An ONNX file is binary protobuf: the worker reads and checks it, and reports what is wrong.
  if (isOnnxUri(uri)) return true;
  let text: string;
  try {
    const stat = await vscode.workspace.fs.stat(uri);
    if (stat.size > MAX_MODEL_JSON_BYTES) return true; // too big to check here; the CLI will say
    text = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
  } catch (e) {
    void vscode.window.showErrorMessage(`PaS: cannot read ${vscode.workspace.asRelativePath(uri)}: ${(e as Error).message}`);
    return false;
  }
  const d = detectLayersModel(text);
  if (!d.ok) {
    void vscode.window.showErrorMessage(`PaS: ${vscode.workspace.asRelativePath(uri)} is not a TensorFlow.js Layers model: ${d.reason}.`);
    return false;
  }
  return true;
}

/** Whether the file is an ONNX model (by extension, as the explorer menu's `when` clause decides). */
export function isOnnxUri(uri: vscode.Uri): boolean {
  return uri.fsPath.toLowerCase().endsWith('.onnx');
}

/**
 * The model a command should act on: its argument, the active inspector, the active JSON editor
 * (when it holds a Layers model, or any JSON file with `anyJson`, used by Inspect, which shows the
 * file's problem itself), or a picked file.
 */
export async function resolveModelUri(arg: unknown, title: string, anyJson = false): Promise<vscode.Uri | undefined> {
  if (arg instanceof vscode.Uri) return arg;
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
  const input = tab?.input;
  if (input instanceof vscode.TabInputCustom && input.viewType === MODEL_INSPECTOR_VIEW_TYPE) return input.uri;
  const editor = vscode.window.activeTextEditor;
  if (editor && editor.document.uri.scheme === 'file' && editor.document.fileName.endsWith('.json') && (anyJson || detectLayersModel(editor.document.getText()).ok)) {
    return editor.document.uri;
  }
  const picked = await vscode.window.showOpenDialog({
    title,
    canSelectMany: false,
    filters: { 'TensorFlow.js Layers model or ONNX': ['json', 'onnx'] },
    openLabel: 'Select model.json or .onnx',
  });
  return picked?.[0];
}

/**
 * Keeps the `pas.layersModelFiles` context key: paths of JSON files in the workspace that are
 * Layers models (model.json is always matched by the menu's `when` clause). Bounded scan: the
 * first 500 JSON files outside node_modules, files over 32 MB skipped.
 */
export class LayersModelIndex implements vscode.Disposable {
  private readonly files = new Set<string>();
  private readonly watcher = vscode.workspace.createFileSystemWatcher('**/*.json');
  private timer: NodeJS.Timeout | undefined;

  constructor() {
    this.watcher.onDidCreate((u) => this.check(u));
    this.watcher.onDidChange((u) => this.check(u));
    this.watcher.onDidDelete((u) => {
      if (this.files.delete(u.fsPath)) this.publish();
    });
    void this.scan();
  }

  private async scan(): Promise<void> {
    const uris = await vscode.workspace.findFiles('**/*.json', '**/node_modules/**', 500);
    for (const uri of uris) await this.check(uri, false);
    this.publish();
  }

  private async check(uri: vscode.Uri, publish = true): Promise<void> {
    if (uri.scheme !== 'file') return;
    let isModel = false;
    try {
      const stat = fs.statSync(uri.fsPath);
      if (stat.size <= 32 * 1024 * 1024) {
        const text = fs.readFileSync(uri.fsPath, 'utf8');
        isModel = text.includes('"modelTopology"') && detectLayersModel(text).ok;
      }
    } catch {
      isModel = false;
    }
    const changed = isModel ? !this.files.has(uri.fsPath) : this.files.has(uri.fsPath);
    if (isModel) this.files.add(uri.fsPath);
    else this.files.delete(uri.fsPath);
    if (changed && publish) this.publish();
  }

  private publish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void vscode.commands.executeCommand('setContext', 'pas.layersModelFiles', [...this.files]), 200);
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.watcher.dispose();
  }
}

/** Training and writing files need a trusted workspace; says so and offers the trust editor. */
export async function requireTrust(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const choice = await vscode.window.showWarningMessage(
    `PaS: ${action} runs a worker process and writes files, which is disabled in Restricted Mode. Inspecting models still works.`,
    'Manage Workspace Trust',
  );
  if (choice) void vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}
