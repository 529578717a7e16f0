/**
 * Glue between VS Code and the worker runner: which executable runs the CLI, its environment,
 * and logging of the command line, stderr and events to the "PaS" output channel.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { formatCommandLine } from './core/cliArgs';
import { Disposable } from './dispose';
import { startWorker, type WorkerCallbacks, type WorkerRun } from './core/workerRunner';
import { workerLaunch } from './core/workerLaunch';

export class WorkerHost extends Disposable {
  readonly output: vscode.LogOutputChannel;
  /** The native backend folder the worker loads from (PAS_NATIVE_DIR), set by NativeBackend.register. */
  nativeDir: (() => string | undefined) | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    super();
    this.output = this._register(vscode.window.createOutputChannel('PaS', { log: true }));
  }

  /** The packaged CLI bundle. */
  get cliPath(): string {
    return this.context.asAbsolutePath(path.join('dist', 'cli.js'));
  }

  /**
   * `pas.nodePath` when set (a restricted setting: ignored from workspace settings in untrusted
   * workspaces), otherwise the extension host's own executable. In desktop VS Code that is Electron,
   * which runs as plain Node with ELECTRON_RUN_AS_NODE=1; in code-server it is Node itself.
   */
  get executable(): string {
    const configured = vscode.workspace.getConfiguration('pas').get<string>('nodePath', '').trim();
    return configured !== '' ? configured : process.execPath;
  }

  /** Starts `cli <args>`; stderr and non-JSON stdout go to the log, events to `callbacks` and the log. */
  start(args: string[], callbacks: WorkerCallbacks, options: { timeoutMs?: number; cwd?: string; cancelGraceMs?: number } = {}): WorkerRun {
    const launch = workerLaunch({
      extensionPath: this.context.extensionPath,
      hostExecutable: process.execPath,
      configuredNode: vscode.workspace.getConfiguration('pas').get<string>('nodePath', ''),
      env: process.env,
      args,
      cwd: options.cwd,
    });
    this.output.info(`$ ${formatCommandLine(launch.executable, launch.args)}`);
    const run = startWorker(
      {
        ...launch,
        env: { ...launch.env, ...this.nativeDirEnv() },
        timeoutMs: options.timeoutMs,
        // the CLI stops at the next batch/epoch boundary and writes a resumable checkpoint; SIGKILL
        // after the grace period would lose it, so searches get a long one
        cancelGraceMs: options.cancelGraceMs ?? 15_000,
      },
      {
        onEvent: (event) => {
          if (event.type === 'log') this.output.info(`[worker] ${event.message}`);
          else if (event.type === 'batch') this.output.trace(JSON.stringify(event));
          else if (event.type === 'error') this.output.error(`[worker] ${event.message}${event.file ? ` (${event.file})` : ''}`);
          else this.output.info(`[event] ${JSON.stringify(event)}`);
          callbacks.onEvent?.(event);
        },
        onStdoutText: (line) => {
          this.output.info(`[stdout] ${line}`);
          callbacks.onStdoutText?.(line);
        },
        onStderr: (text) => {
          for (const line of text.split(/\r?\n/)) if (line.trim() !== '') this.output.info(`[stderr] ${line}`);
          callbacks.onStderr?.(text);
        },
      },
    );
    void run.outcome.then((o) => this.output.info(`worker ${run.pid ?? '?'} finished: ${o.kind}${'reason' in o ? ` (${o.reason})` : ''}`));
    return run;
  }

  private nativeDirEnv(): NodeJS.ProcessEnv {
    const dir = this.nativeDir?.();
    return dir ? { PAS_NATIVE_DIR: dir } : {};
  }

  showLog(): void {
    this.output.show(true);
  }
}
