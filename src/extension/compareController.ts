/**
 * "Compare with baselines" for finished searches: one CompareRun per search session (the
 * baselines run as workers one after another, see core/compareRun.ts), its progress in a
 * cancellable notification and in the session's panels, and a message when it ends. The
 * comparison writes into a new folder beside the run (`<run>-compare/`): never the user's model,
 * never the run's own folder.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { CompareState } from '../shared/webviewProtocol';
import { CompareRun } from './core/compareRun';
import { chooseSiblingDir } from './core/outputNaming';
import { Disposable } from './dispose';
import type { SearchSession } from './searchSession';
import type { WorkerHost } from './workerHost';

export interface CompareChange {
  session: SearchSession;
  state: CompareState;
}

export class CompareController extends Disposable {
  private readonly runs = new Map<SearchSession, CompareRun>();
  private readonly states = new Map<SearchSession, CompareState>();
  private readonly onDidChangeEmitter = this._register(new vscode.EventEmitter<CompareChange>());
  /** A comparison's state changed (progress, end). */
  readonly onDidChange = this.onDidChangeEmitter.event;

  constructor(private readonly host: WorkerHost) {
    super();
    // closing VS Code (or the extension) kills the running baseline, like a running search
    this._register({ dispose: () => [...this.runs.values()].forEach((r) => r.kill()) });
  }

  /** The latest state of the session's comparison, for a panel's snapshot. */
  stateOf(session: SearchSession): CompareState | undefined {
    return this.states.get(session);
  }

  /** Runs the baselines of a finished search and compares; a second request while one runs is refused. */
  async start(session: SearchSession): Promise<CompareState | undefined> {
    const report = session.report;
    if (session.status !== 'done' || !report) {
      void vscode.window.showWarningMessage('PaS: only a finished search can be compared with the baselines.');
      return undefined;
    }
    if (this.runs.get(session)?.running) {
      void vscode.window.showInformationMessage(`PaS: the comparison for ${session.info.label} is already running.`);
      return undefined;
    }
    const compareDir = chooseSiblingDir(session.outputDir, 'compare', fs.existsSync);
    const run = new CompareRun(
      { options: session.options, report, outputDir: session.outputDir },
      compareDir,
      // the CLI stops at the next batch on SIGINT; a long grace keeps it from being killed mid-write
      (args, callbacks) => this.host.start(args, callbacks, { cancelGraceMs: 60_000 }),
      (state) => this.update(session, state),
    );
    this.runs.set(session, run);
    this.update(session, run.state);
    this.host.output.info(`compare ${session.info.label}: baselines into ${compareDir}`);
    const finished = run.run();
    this.trackProgress(session, run, finished);
    const final = await finished;
    void this.announce(session, final);
    return final;
  }

  /** Stops the session's comparison: the running baseline is cancelled, the next is not started. */
  cancel(session: SearchSession): void {
    this.runs.get(session)?.cancel();
  }

  private update(session: SearchSession, state: CompareState): void {
    this.states.set(session, state);
    if (!this.isDisposed) this.onDidChangeEmitter.fire({ session, state });
  }

  private trackProgress(session: SearchSession, run: CompareRun, finished: Promise<CompareState>): void {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `PaS: comparing ${session.info.label} with the baselines`, cancellable: true },
      (progress, token) => {
        token.onCancellationRequested(() => run.cancel());
        const sub = this.onDidChange(({ session: s, state }) => {
          if (s !== session) return;
          const current = state.methods.find((m) => m.state === 'running');
          if (current) progress.report({ message: `${current.method} (${state.methods.indexOf(current) + 1}/${state.methods.length}): ${current.detail ?? ''}` });
        });
        return finished.then(() => sub.dispose());
      },
    );
  }

  private async announce(session: SearchSession, state: CompareState): Promise<void> {
    const label = session.info.label;
    if (state.status === 'done') {
      const choice = await vscode.window.showInformationMessage(`PaS: ${label} compared with ${state.methods.length - 1} baselines at equal training.`, 'Open compare.json');
      if (choice === 'Open compare.json') await vscode.window.showTextDocument(vscode.Uri.file(path.join(state.compareDir, 'compare.json')), { preview: false });
    } else if (state.status === 'cancelled') {
      void vscode.window.showInformationMessage(`PaS: the comparison of ${label} was cancelled.`);
    } else {
      const choice = await vscode.window.showErrorMessage(`PaS: the comparison of ${label} failed: ${state.failure ?? 'unknown reason'}`, 'Open Log');
      if (choice === 'Open Log') this.host.showLog();
    }
  }
}
