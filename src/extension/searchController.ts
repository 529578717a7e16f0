/**
 * Starting, tracking and cancelling searches: the short launch flow (data, MACs target, epochs),
 * one session per model, the progress notification, the `pas.searchRunning` context key, and what
 * happens when a run ends.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { OpenTarget, SearchRunInfo } from '../shared/webviewProtocol';
import type { BackendChoice, WorkerEvent } from '../shared/workerProtocol';
import { dataSpec, parseDataSpec, validateEpochsInput, validateFractionInput, type DataChoice, type SearchOptions } from './core/cliArgs';
import { chooseBuiltinOutputDir, chooseOutputDir } from './core/outputNaming';
import { SearchPanel } from './searchPanel';
import { SearchSession } from './searchSession';
import type { WorkerHost } from './workerHost';

/** What is remembered per model in workspaceState. */
interface LastChoices {
  data: DataChoice;
  targetFraction: number;
  searchEpochs: number;
  finetuneEpochs: number;
}

export interface SearchRequest {
  /** A model.json path or `builtin:NAME`. */
  model: string;
  label: string;
  /** Skip the questions (Try PaS on a Sample Model). */
  preset?: Partial<LastChoices>;
}

export const MAX_EPOCHS = 1000;

export class SearchController implements vscode.Disposable {
  private readonly sessions = new Map<string, SearchSession>();
  private readonly panels = new Map<SearchSession, SearchPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly host: WorkerHost,
    private readonly reparameterize: (modelPath: string) => Promise<void>,
  ) {}

  /** Asks for the search settings and starts the search; undefined if the user backed out. */
  async launch(request: SearchRequest): Promise<SearchSession | undefined> {
    const key = request.model.startsWith('builtin:') ? request.model : path.resolve(request.model);
    const existing = this.sessions.get(key);
    if (existing?.running) {
      const choice = await vscode.window.showWarningMessage(`PaS: a search on ${request.label} is already running. Only one search per model at a time.`, 'Show Panel', 'Cancel It');
      if (choice === 'Show Panel') this.showPanel(existing);
      if (choice === 'Cancel It') existing.cancel();
      return undefined;
    }
    const choices = request.preset && isComplete(request.preset) ? request.preset : await this.ask(key, request.preset);
    if (!choices) return undefined;
    void this.context.workspaceState.update(`pas.lastChoices:${key}`, choices);

    const config = vscode.workspace.getConfiguration('pas');
    const outDir = request.model.startsWith('builtin:')
      ? chooseBuiltinOutputDir(request.model, this.builtinOutputBase(), 'pas', fs.existsSync)
      : chooseOutputDir(request.model, 'pas', fs.existsSync);
    const pretrainSetting = config.get<number | null>('pretrainEpochs', null);
    const pretrain = typeof pretrainSetting === 'number' ? pretrainSetting : undefined;
    const options: SearchOptions = {
      model: request.model,
      data: choices.data,
      targetFraction: choices.targetFraction,
      searchEpochs: choices.searchEpochs,
      finetuneEpochs: choices.finetuneEpochs,
      pretrainEpochs: pretrain,
      backend: config.get<BackendChoice>('backend', 'auto'),
      workers: workersSetting(config.get<string | number>('workers', 'auto')),
      outDir,
    };
    const info: SearchRunInfo = {
      model: request.model,
      label: request.label,
      dataSpec: dataSpec(choices.data),
      targetFraction: choices.targetFraction,
      epochs: { pretrain, search: choices.searchEpochs, finetune: choices.finetuneEpochs },
      outputDir: outDir,
    };
    return this.start(new SearchSession(key, info, options, this.host), existing);
  }

  /** Registers a new session, opens its panel and progress, and announces its end. */
  private start(session: SearchSession, existing: SearchSession | undefined): SearchSession {
    // a finished session of the same model is replaced; its panel (if open) keeps showing it
    if (existing && !this.panels.has(existing)) existing.dispose();
    this.sessions.set(session.key, session);
    this.updateContextKey();
    this.showPanel(session);
    this.trackProgress(session);
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
    const panel = SearchPanel.create(this.context.extensionUri, session, {
      reparameterize: (s) => void this.reparameterizeResult(s),
      open: (s, target) => void this.open(s, target),
      log: (m) => this.host.output.warn(m),
    });
    this.panels.set(session, panel);
    panel.onDidDispose(() => this.panels.delete(session));
  }

  private builtinOutputBase(): string {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (folder && folder.uri.scheme === 'file') return path.join(folder.uri.fsPath, 'pas-output');
    return path.join(this.context.globalStorageUri.fsPath, 'runs');
  }

  private async ask(key: string, preset: Partial<LastChoices> | undefined): Promise<LastChoices | undefined> {
    const config = vscode.workspace.getConfiguration('pas');
    const last = this.context.workspaceState.get<LastChoices>(`pas.lastChoices:${key}`);
    const defaultData = parseDataSpec(config.get<string>('data', 'sample')) ?? { kind: 'sample' };
    const data = preset?.data ?? (await this.askData(last?.data ?? defaultData));
    if (!data) return undefined;
    const fractionText = await vscode.window.showInputBox({
      title: 'PaS: MACs target (2/4)',
      prompt: 'Fraction of the original multiply-adds the pruned model may keep (0.05-0.95)',
      value: String(preset?.targetFraction ?? last?.targetFraction ?? config.get<number>('targetMacsFraction', 0.5)),
      validateInput: validateFractionInput,
      ignoreFocusOut: true,
    });
    if (fractionText === undefined) return undefined;
    const searchText = await vscode.window.showInputBox({
      title: 'PaS: search epochs (3/4)',
      prompt: 'Epochs of width search (training with the MACs budget loss)',
      value: String(preset?.searchEpochs ?? last?.searchEpochs ?? config.get<number>('searchEpochs', 10)),
      validateInput: (t) => validateEpochsInput(t, 1, MAX_EPOCHS),
      ignoreFocusOut: true,
    });
    if (searchText === undefined) return undefined;
    const finetuneText = await vscode.window.showInputBox({
      title: 'PaS: fine-tune epochs (4/4)',
      prompt: 'Epochs of fine-tuning with the searched widths frozen',
      value: String(preset?.finetuneEpochs ?? last?.finetuneEpochs ?? config.get<number>('finetuneEpochs', 10)),
      validateInput: (t) => validateEpochsInput(t, 0, MAX_EPOCHS),
      ignoreFocusOut: true,
    });
    if (finetuneText === undefined) return undefined;
    return { data, targetFraction: Number(fractionText), searchEpochs: Number(searchText), finetuneEpochs: Number(finetuneText) };
  }

  private async askData(current: DataChoice): Promise<DataChoice | undefined> {
    type Item = vscode.QuickPickItem & { choice: 'sample' | 'idx' | 'folder' | 'current' };
    const items: Item[] = [
      { label: 'Sample data', description: 'bundled, small', detail: 'The small labelled sample that ships with the extension', choice: 'sample' },
      { label: 'IDX folder…', description: 'MNIST / Fashion-MNIST format', detail: 'A folder with train/test images and labels in IDX format (gzip or not)', choice: 'idx' },
      { label: 'Image folder…', description: 'one subfolder per class', detail: 'A folder with one subfolder of PNG/JPEG images per class', choice: 'folder' },
    ];
    if (current.kind !== 'sample') items.unshift({ label: `Last used: ${dataSpec(current)}`, choice: 'current' });
    const pick = await vscode.window.showQuickPick(items, { title: 'PaS: training data (1/4)', placeHolder: 'Data to search and fine-tune on', ignoreFocusOut: true });
    if (!pick) return undefined;
    if (pick.choice === 'current') return current;
    if (pick.choice === 'sample') return { kind: 'sample' };
    const folder = await vscode.window.showOpenDialog({
      title: pick.choice === 'idx' ? 'Folder with IDX files' : 'Folder with one subfolder per class',
      canSelectFiles: false,
      canSelectFolders: true,
      canSelectMany: false,
      openLabel: 'Use this folder',
    });
    if (!folder?.[0]) return undefined;
    return { kind: pick.choice, dir: folder[0].fsPath };
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
        if (p) await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(p), 'pas.modelInspector');
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

  dispose(): void {
    for (const panel of this.panels.values()) panel.dispose();
    for (const session of this.sessions.values()) session.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

function isComplete(p: Partial<LastChoices>): p is LastChoices {
  return p.data !== undefined && p.targetFraction !== undefined && p.searchEpochs !== undefined && p.finetuneEpochs !== undefined;
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

export function fmt(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** The `pas.workers` setting as a --workers value ('auto' for anything that is not a count). */
function workersSetting(value: string | number): 'auto' | number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 ? value : 'auto';
}
