/**
 * Starting, tracking and cancelling searches: the run-setup form ("Prune with PaS"), or a direct
 * start with the defaults ("Try PaS on a Sample Model"); one session per model, the progress
 * notification, the `pas.searchRunning` context key, and what happens when a run ends.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { defaultRunSetup, type RunSetup } from '../shared/runSetup';
import { formatCount as fmt, formatPercent as pct } from '../shared/format';
import type { OpenTarget, SearchRunInfo } from '../shared/webviewProtocol';
import type { WorkerEvent } from '../shared/workerProtocol';
import { CompareController } from './compareController';
import { dataSpec, searchOptionsFromSetup } from './core/cliArgs';
import { chooseBuiltinOutputDir, chooseOutputDir } from './core/outputNaming';
import { Disposable } from './dispose';
import { SearchPanel } from './searchPanel';
import { SearchSession } from './searchSession';
import { readBackendSetting, readSetupSettings } from './settings';
import { SetupPanel } from './setupPanel';
import { MODEL_INSPECTOR_VIEW_TYPE } from './viewTypes';
import type { WorkerHost } from './workerHost';

export interface SearchRequest {
  /** A model.json path or `builtin:NAME`. */
  model: string;
  label: string;
  /** Start at once with the defaults and these values, without the setup form (Try PaS on a Sample Model). */
  direct?: Partial<RunSetup>;
}

/** The last form state per model, in workspaceState. */
const lastSetupKey = (modelKey: string) => `pas.lastSetup:${modelKey}`;

export class SearchController extends Disposable {
  private readonly sessions = new Map<string, SearchSession>();
  private readonly panels = new Map<SearchSession, SearchPanel>();
  private readonly setupPanels = new Map<string, SetupPanel>();
  /** "Compare with baselines" of finished runs, shown in their panels. */
  private readonly compare: CompareController;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly host: WorkerHost,
    private readonly reparameterize: (modelPath: string) => Promise<void>,
  ) {
    super();
    this.compare = this._register(new CompareController(host));
    this._register({
      dispose: () => {
        for (const panel of this.setupPanels.values()) panel.dispose();
        for (const panel of this.panels.values()) panel.dispose();
        for (const session of this.sessions.values()) session.dispose();
      },
    });
  }

  /** Opens the setup form for the model (or starts at once for a direct request). */
  async launch(request: SearchRequest): Promise<SearchSession | undefined> {
    const key = modelKey(request.model);
    const existing = this.sessions.get(key);
    if (existing?.running) {
      const choice = await vscode.window.showWarningMessage(`PaS: a search on ${request.label} is already running. Only one search per model at a time.`, 'Show Panel', 'Cancel It');
      if (choice === 'Show Panel') this.showPanel(existing);
      if (choice === 'Cancel It') existing.cancel();
      return undefined;
    }
    if (request.direct) return this.startRun(request, defaultRunSetup(readSetupSettings(), request.direct));
    const open = this.setupPanels.get(key);
    if (open) {
      open.reveal();
      return undefined;
    }
    const last = this.context.workspaceState.get<Partial<RunSetup>>(lastSetupKey(key));
    const panel = SetupPanel.create(this.context.extensionUri, this.host, request, defaultRunSetup(readSetupSettings(), last), (setup, webviewPanel) =>
      !!this.startRun(request, setup, webviewPanel),
    );
    this.setupPanels.set(key, panel);
    this._register(panel.onDidDispose(() => this.setupPanels.delete(key)));
    return undefined;
  }

  /** Starts the search a setup describes; shows it in `webviewPanel` (the form's) or a new panel. */
  private startRun(request: SearchRequest, setup: RunSetup, webviewPanel?: vscode.WebviewPanel): SearchSession | undefined {
    const key = modelKey(request.model);
    const existing = this.sessions.get(key);
    if (existing?.running) {
      void vscode.window.showWarningMessage(`PaS: a search on ${request.label} is already running.`);
      return undefined;
    }
    void this.context.workspaceState.update(lastSetupKey(key), setup);
    const outDir = request.model.startsWith('builtin:')
      ? chooseBuiltinOutputDir(request.model, this.builtinOutputBase(), 'pas', fs.existsSync)
      : chooseOutputDir(request.model, 'pas', fs.existsSync);
    const options = { ...searchOptionsFromSetup(setup, request.model, outDir, readBackendSetting()), workers: workersSetting(vscode.workspace.getConfiguration('pas').get<string | number>('workers', 'auto')) };
    const info: SearchRunInfo = {
      model: request.model,
      label: request.label,
      dataSpec: dataSpec(setup.data),
      targetFraction: setup.targetFraction,
      epochs: { pretrain: setup.pretrainEpochs ?? undefined, search: setup.searchEpochs, finetune: setup.finetuneEpochs },
      outputDir: outDir,
    };
    return this.start(new SearchSession(key, info, options, this.host), existing, webviewPanel);
  }

  /** Registers a new session, shows its panel and progress, starts it, and announces its end. */
  private start(session: SearchSession, existing: SearchSession | undefined, webviewPanel?: vscode.WebviewPanel): SearchSession {
    // a finished session of the same model is replaced; its panel (if open) keeps showing it
    if (existing && !this.panels.has(existing)) existing.dispose();
    this.sessions.set(session.key, session);
    if (webviewPanel) this.trackPanel(session, SearchPanel.adopt(webviewPanel, this.context.extensionUri, session, this.panelActions()));
    else this.showPanel(session);
    this.trackProgress(session);
    session.start();
    this.updateContextKey();
    void session.finished.then(() => {
      this.updateContextKey();
      void this.announce(session);
    });
    return session;
  }

  /** Sessions still running. */
  get running(): SearchSession[] {
    return [...this.sessions.values()].filter((s) => s.running);
  }

  /** `PaS: Cancel Search`: the only running search, or the one the user picks. */
  async cancelCommand(): Promise<void> {
    const running = this.running;
    if (running.length === 0) {
      void vscode.window.showInformationMessage('PaS: no search is running.');
      return;
    }
    let target: SearchSession | undefined = running[0];
    if (running.length > 1) {
      const pick = await vscode.window.showQuickPick(
        running.map((s) => ({ label: s.info.label, description: s.info.model, session: s })),
        { title: 'Cancel which PaS search?' },
      );
      target = pick?.session;
    }
    target?.cancel();
  }

  showPanel(session: SearchSession): void {
    const existing = this.panels.get(session);
    if (existing) return existing.reveal();
    this.trackPanel(session, SearchPanel.create(this.context.extensionUri, session, this.panelActions()));
  }

  private trackPanel(session: SearchSession, panel: SearchPanel): void {
    this.panels.set(session, panel);
    this._register(panel.onDidDispose(() => this.panels.delete(session)));
  }

  private panelActions() {
    return {
      reparameterize: (s: SearchSession) => void this.reparameterizeResult(s),
      open: (s: SearchSession, target: OpenTarget) => void this.open(s, target),
      log: (m: string) => this.host.output.warn(m),
      compare: this.compare,
    };
  }

  private builtinOutputBase(): string {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (folder && folder.uri.scheme === 'file') return path.join(folder.uri.fsPath, 'pas-output');
    return path.join(this.context.globalStorageUri.fsPath, 'runs');
  }

  private trackProgress(session: SearchSession): void {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `PaS search on ${session.info.label}`, cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          token.onCancellationRequested(() => {
            progress.report({ message: 'cancelling after the current batch…' });
            session.cancel();
          });
          let lastReport = 0;
          let pending: string | undefined;
          const sub = session.onEvent((event) => {
            const message = describeProgress(event);
            if (!message) return;
            pending = message;
            const now = Date.now();
            if (now - lastReport >= 500 || event.type !== 'batch') {
              progress.report({ message: pending });
              lastReport = now;
              pending = undefined;
            }
          });
          void session.finished.then(() => {
            sub.dispose();
            resolve();
          });
        }),
    );
  }

  private async announce(session: SearchSession): Promise<void> {
    const label = session.info.label;
    if (session.status === 'done') {
      const r = session.report;
      const summary = r
        ? `MACs ${fmt(r.macsBefore)} → ${fmt(r.macsAfter)} (${((100 * r.macsAfter) / r.macsBefore).toFixed(1)}% of original, target ${(100 * r.targetFraction).toFixed(0)}%), accuracy ${pct(r.accuracyBefore)} → ${pct(r.accuracyAfter)}`
        : 'finished';
      const buttons = ['Open Report', 'Open Deployed Model'].filter((b) => (b === 'Open Report' ? session.reportPath : session.deployedModelPath));
      const choice = await vscode.window.showInformationMessage(`PaS search on ${label}: ${summary}.`, ...buttons);
      if (choice === 'Open Report') await this.open(session, 'report');
      if (choice === 'Open Deployed Model') await this.open(session, 'deployedModel');
    } else if (session.status === 'cancelled') {
      const buttons = this.resumable(session) ? ['Resume'] : [];
      const choice = await vscode.window.showInformationMessage(`PaS search on ${label} was cancelled.`, ...buttons);
      if (choice === 'Resume') this.resume(session);
    } else if (session.status === 'failed') {
      // A crash (or a kill) leaves the last complete checkpoint: the run can continue from it.
      const buttons = this.resumable(session) ? ['Resume', 'Open Log'] : ['Open Log'];
      const choice = await vscode.window.showErrorMessage(`PaS search on ${label} failed: ${session.failure ?? 'unknown reason'}`, ...buttons);
      if (choice === 'Open Log') this.host.showLog();
      if (choice === 'Resume') this.resume(session);
    }
  }

  /** A run folder with a state.json holds a complete checkpoint that `pas search --resume` continues. */
  private resumable(session: SearchSession): boolean {
    return fs.existsSync(path.join(session.outputDir, 'state.json'));
  }

  /** Continues a cancelled or crashed search from its last checkpoint, in the same folder. */
  private resume(previous: SearchSession): void {
    if (this.sessions.get(previous.key)?.running) {
      void vscode.window.showWarningMessage(`PaS: a search on ${previous.info.label} is already running.`);
      return;
    }
    // One tab per run: the resumed run's panel replaces the stopped one's (the worker replays the history).
    this.panels.get(previous)?.dispose();
    this.start(new SearchSession(previous.key, previous.info, { ...previous.options, resume: previous.outputDir }, this.host), previous);
  }

  private async reparameterizeResult(session: SearchSession): Promise<void> {
    const candidates = [session.report?.searchedCheckpoint, session.info.model].filter((p): p is string => !!p && !p.startsWith('builtin:'));
    const modelPath = candidates.map((p) => (path.isAbsolute(p) ? p : path.join(session.outputDir, p))).find((p) => p.endsWith('.json') && fs.existsSync(p));
    if (!modelPath) {
      void vscode.window.showWarningMessage('PaS: there is no training-time model file to reparameterize yet (a builtin model is reparameterized at the end of the search).');
      return;
    }
    await this.reparameterize(modelPath);
  }

  async open(session: SearchSession, target: OpenTarget): Promise<void> {
    switch (target) {
      case 'log':
        return this.host.showLog();
      case 'report': {
        const p = session.reportPath;
        if (p) await vscode.window.showTextDocument(vscode.Uri.file(p), { preview: false });
        else void vscode.window.showWarningMessage('PaS: no report.json yet.');
        return;
      }
      case 'deployedModel': {
        const p = session.deployedModelPath;
        if (p) await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(p), MODEL_INSPECTOR_VIEW_TYPE);
        else void vscode.window.showWarningMessage('PaS: no deployed model yet.');
        return;
      }
      case 'outputFolder':
        if (fs.existsSync(session.outputDir)) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(session.outputDir));
        return;
    }
  }

  private updateContextKey(): void {
    void vscode.commands.executeCommand('setContext', 'pas.searchRunning', this.running.length > 0);
  }

}

function modelKey(model: string): string {
  return model.startsWith('builtin:') ? model : path.resolve(model);
}

function describeProgress(event: WorkerEvent): string | undefined {
  switch (event.type) {
    case 'model':
      return `${event.groups.length} prunable groups, target ${fmt(event.macsTarget)} of ${fmt(event.macsOriginal)} MACs`;
    case 'phase':
      return `${event.phase}…`;
    case 'batch':
      return `${event.phase} epoch ${event.epoch}, batch ${event.batch}/${event.batches}, loss ${event.loss.toFixed(3)}, MACs ${fmt(event.macs)}`;
    case 'epoch':
      return `${event.phase} epoch ${event.epoch}/${event.epochs}: accuracy ${pct(event.valAccuracy)}, MACs ${fmt(event.macs)}`;
    default:
      return undefined;
  }
}

/** The `pas.workers` setting as a --workers value: a count, or 'auto'; anything else is the default, 'auto'. */
function workersSetting(value: string | number): 'auto' | number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : 'auto';
}
