/**
 * The run-setup form of "Prune with PaS": a search panel that first shows the form (data, target,
 * epochs, batch size, width constraints with the group list, preprocessing, distillation, and a
 * live budget preview), inspects the model with `pas inspect --json` for the group list and the
 * MACs formula, and on Start hands its WebviewPanel to the run's SearchPanel: the same tab turns
 * into the live view.
 *
 * The host owns the form state (the webview reports every change), so a hidden and re-shown
 * panel, a browsed folder or a refused Start re-render it from one snapshot.
 */
import * as vscode from 'vscode';
import { previewBudget } from '../engine/budgetPreview';
import { validateRunSetup, type RunSetup, type SetupField } from '../shared/runSetup';
import { WEBVIEW_PROTOCOL_VERSION, type SetupInitMessage, type SetupModelInfo } from '../shared/webviewProtocol';
import { buildInspectArgs } from './core/cliArgs';
import { validateWebviewMessage } from './core/webviewMessages';
import { Disposable } from './dispose';
import { SEARCH_PANEL_VIEW_TYPE } from './viewTypes';
import { renderWebviewHtml, webviewOptions } from './webviewHtml';
import type { WorkerHost } from './workerHost';

const INSPECT_TIMEOUT_MS = 120_000;

export interface SetupTarget {
  /** The model.json path. */
  model: string;
  label: string;
}

/** Called on a valid Start; returns false when the run could not start (the form stays). */
export type StartHandler = (setup: RunSetup, panel: vscode.WebviewPanel) => boolean;

export class SetupPanel extends Disposable {
  private setup: RunSetup;
  private inspection: SetupInitMessage['inspection'] = { kind: 'loading' };
  private errors: Partial<Record<SetupField, string>> | undefined;
  /** True once the WebviewPanel belongs to a run's SearchPanel. */
  private handedOver = false;
  private readonly onDisposeEmitter = this._register(new vscode.EventEmitter<void>());
  readonly onDidDispose = this.onDisposeEmitter.event;

  static create(extensionUri: vscode.Uri, host: WorkerHost, target: SetupTarget, initial: RunSetup, onStart: StartHandler): SetupPanel {
    const panel = vscode.window.createWebviewPanel(SEARCH_PANEL_VIEW_TYPE, `PaS: ${target.label}`, vscode.ViewColumn.Active, {
      ...webviewOptions(extensionUri),
      enableFindWidget: true,
    });
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = renderWebviewHtml(panel.webview, extensionUri, 'search', panel.title);
    return new SetupPanel(panel, host, target, initial, onStart);
  }

  private constructor(readonly panel: vscode.WebviewPanel, private readonly host: WorkerHost, readonly target: SetupTarget, initial: RunSetup, private readonly onStart: StartHandler) {
    super();
    this.setup = initial;
    this._register(panel.onDidDispose(() => this.dispose()));
    this._register(panel.webview.onDidReceiveMessage((raw) => void this.onMessage(raw)));
    this.inspect();
  }

  reveal(): void {
    this.panel.reveal();
  }

  private inspect(): void {
    let info: SetupModelInfo | undefined;
    const run = this.host.start(buildInspectArgs(this.target.model), {
      onEvent: (e) => {
        if (e.type !== 'inspect') return;
        const r = e.report;
        info = { groups: r.prunableGroups, deployedMacs: r.deployedForm.totalMacs, macsFormula: r.macsFormula };
      },
    }, { timeoutMs: INSPECT_TIMEOUT_MS });
    this._register({ dispose: () => run.kill() });
    void run.outcome.then((o) => {
      if (this.isDisposed) return;
      if (info) this.inspection = { kind: 'ready', model: info };
      else if (o.kind === 'error') this.inspection = { kind: 'error', message: o.event.message };
      else this.inspection = { kind: 'error', message: 'reason' in o ? o.reason : `the inspection ended: ${o.kind}` };
      // a remembered keep list may name groups this model no longer has
      if (info) this.setup = { ...this.setup, keep: this.setup.keep.filter((k) => info!.groups.some((g) => g.name === k)) };
      this.send();
    });
  }

  private send(): void {
    if (this.isDisposed || this.handedOver) return;
    const message: SetupInitMessage = {
      type: 'init',
      view: 'setup',
      protocol: WEBVIEW_PROTOCOL_VERSION,
      model: this.target.model,
      label: this.target.label,
      setup: this.setup,
      inspection: this.inspection,
      errors: this.errors,
    };
    void this.panel.webview.postMessage(message);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const v = validateWebviewMessage(raw);
    if (!v.ok) return this.host.output.warn(`setup form: ignored message (${v.reason})`);
    const message = v.message;
    switch (message.type) {
      case 'ready':
        return this.send();
      case 'setupChanged': {
        // Only a complete, valid state is kept; a field being typed in stays the webview's business.
        const checked = validateRunSetup(message.setup);
        if (checked.ok) this.setup = checked.setup;
        return;
      }
      case 'browseData': {
        const folder = await vscode.window.showOpenDialog({
          title: message.kind === 'idx' ? 'Folder with IDX files' : 'Folder of images (one subfolder per class, or images only for --distill)',
          canSelectFiles: false,
          canSelectFolders: true,
          canSelectMany: false,
          openLabel: 'Use this folder',
        });
        if (folder?.[0]) this.setup = { ...this.setup, data: { kind: message.kind, dir: folder[0].fsPath } };
        return this.send();
      }
      case 'startRun':
        return this.start(message.setup);
      case 'open':
        if (message.target === 'log') this.host.showLog();
        return;
      default:
        return this.host.output.warn(`setup form: ignored "${message.type}"`);
    }
  }

  private start(raw: unknown): void {
    const groups = this.inspection.kind === 'ready' ? this.inspection.model.groups : undefined;
    const checked = validateRunSetup(raw, groups?.map((g) => g.name));
    if (!checked.ok) {
      this.errors = checked.errors;
      return this.send();
    }
    this.setup = checked.setup;
    const formula = this.inspection.kind === 'ready' ? this.inspection.model.macsFormula : undefined;
    if (groups && formula) {
      const preview = previewBudget(formula, groups, checked.setup, checked.setup.targetFraction);
      if (!preview.reachable) {
        this.errors = { targetFraction: `Unreachable under these constraints: the lowest reachable fraction is ${preview.lowestFraction.toFixed(3)}.` };
        return this.send();
      }
    }
    this.errors = undefined;
    if (!this.onStart(checked.setup, this.panel)) return this.send();
    this.handedOver = true;
    this.dispose();
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.onDisposeEmitter.fire();
    // Handed over: the panel lives on as the run's live view. Otherwise closing the form closes it.
    if (!this.handedOver) this.panel.dispose();
    super.dispose();
  }
}
