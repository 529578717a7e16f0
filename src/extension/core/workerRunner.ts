/**
 * Runs the `pas` CLI as a child process and turns its life into one typed outcome.
 *
 * The worker runs in its own process group (`detached`), so cancelling signals the whole tree
 * (tfjs may start helpers); SIGINT first, which the CLI answers with a `cancelled` event after the
 * current batch, then SIGKILL after a grace period. A crash (non-zero exit without an `error`
 * event, or death by signal) is reported with the tail of stderr, which is where Node prints the
 * stack. Nothing here imports `vscode`.
 */
import { spawn, type ChildProcess } from 'child_process';
import type { CancelledEvent, DoneEvent, ErrorEvent, WorkerEvent } from '../../shared/workerProtocol';
import { JsonLineSplitter } from './lineSplitter';

export interface WorkerLaunch {
  /** Node (or Electron with ELECTRON_RUN_AS_NODE=1) executable. */
  executable: string;
  /** Arguments, starting with the CLI script path. */
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Kill the worker after this long (inspect and reparam; searches run without a limit). */
  timeoutMs?: number;
  /** Time between SIGINT and SIGKILL on cancel. */
  cancelGraceMs?: number;
}

export interface WorkerCallbacks {
  onEvent?(event: WorkerEvent): void;
  /** A stdout line that is not an event. */
  onStdoutText?(line: string): void;
  /** Raw stderr text (human log lines). */
  onStderr?(text: string): void;
}

export type WorkerOutcome =
  | { kind: 'done'; event: DoneEvent; exitCode: number | null }
  | { kind: 'cancelled'; event?: CancelledEvent; exitCode: number | null; signal: NodeJS.Signals | null }
  | { kind: 'error'; event: ErrorEvent; exitCode: number | null }
  | { kind: 'crashed'; reason: string; exitCode: number | null; signal: NodeJS.Signals | null; stderrTail: string }
  | { kind: 'timeout'; reason: string; stderrTail: string }
  | { kind: 'spawnFailed'; reason: string };

const STDERR_TAIL_CHARS = 4000;

/** Keeps the last `max` characters of a stream. */
export class TailBuffer {
  private text = '';
  constructor(private readonly max = STDERR_TAIL_CHARS) {}
  push(s: string): void {
    this.text += s;
    if (this.text.length > this.max * 2) this.text = this.text.slice(-this.max);
  }
  toString(): string {
    return this.text.length > this.max ? this.text.slice(-this.max) : this.text;
  }
}

export class WorkerRun {
  readonly outcome: Promise<WorkerOutcome>;
  private child: ChildProcess | undefined;
  private cancelRequested = false;
  private timedOut = false;
  private exited = false;
  private killTimer: NodeJS.Timeout | undefined;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private readonly stderrTail = new TailBuffer();
  private lastTerminal: DoneEvent | CancelledEvent | ErrorEvent | undefined;

  constructor(private readonly launch: WorkerLaunch, private readonly callbacks: WorkerCallbacks = {}) {
    this.outcome = new Promise<WorkerOutcome>((resolve) => this.start(resolve));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && !this.exited;
  }

  /** Asks the worker to stop (SIGINT to its group), then kills the group after the grace period. */
  cancel(): void {
    if (!this.running || this.cancelRequested) return;
    this.cancelRequested = true;
    this.signalGroup('SIGINT');
    this.killTimer = setTimeout(() => this.kill(), this.launch.cancelGraceMs ?? 10_000);
    this.killTimer.unref?.();
  }

  /** Kills the worker's process group at once. */
  kill(): void {
    if (!this.running) return;
    this.signalGroup('SIGKILL');
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const child = this.child;
    if (!child?.pid) return;
    try {
      if (process.platform === 'win32') {
        if (signal === 'SIGKILL') spawn('taskkill', ['/pid', String(child.pid), '/T', '/F'], { windowsHide: true });
        else child.kill(signal);
      } else {
        process.kill(-child.pid, signal);
      }
    } catch {
      // the group is already gone
      try {
        child.kill(signal);
      } catch {
        /* already dead */
      }
    }
  }

  private start(resolve: (o: WorkerOutcome) => void): void {
    let child: ChildProcess;
    try {
      child = spawn(this.launch.executable, this.launch.args, {
        cwd: this.launch.cwd,
        env: this.launch.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: process.platform !== 'win32',
        windowsHide: true,
      });
    } catch (e) {
      resolve({ kind: 'spawnFailed', reason: (e as Error).message });
      return;
    }
    this.child = child;
    let settled = false;
    const finish = (o: WorkerOutcome) => {
      if (settled) return;
      settled = true;
      if (this.killTimer) clearTimeout(this.killTimer);
      if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
      resolve(o);
    };

    const splitter = new JsonLineSplitter({
      onEvent: (event) => {
        if (event.type === 'done' || event.type === 'cancelled' || event.type === 'error') this.lastTerminal = event;
        this.callbacks.onEvent?.(event);
      },
      onText: (line) => this.callbacks.onStdoutText?.(line),
    });
    child.stdout!.on('data', (chunk: Buffer) => splitter.push(chunk));
    child.stdout!.on('end', () => splitter.end());
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      this.stderrTail.push(text);
      this.callbacks.onStderr?.(text);
    });

    child.on('error', (err) => {
      this.exited = true;
      finish({ kind: 'spawnFailed', reason: `could not start ${this.launch.executable}: ${err.message}` });
    });
    child.on('exit', () => {
      this.exited = true;
    });
    // 'close' comes after stdout/stderr ended, so every event has been delivered by then.
    child.on('close', (code, signal) => {
      this.exited = true;
      finish(this.classify(code, signal));
    });

    if (this.launch.timeoutMs !== undefined) {
      this.timeoutTimer = setTimeout(() => {
        this.timedOut = true;
        this.kill();
      }, this.launch.timeoutMs);
      this.timeoutTimer.unref?.();
    }
  }

  private classify(code: number | null, signal: NodeJS.Signals | null): WorkerOutcome {
    const tail = this.stderrTail.toString();
    const terminal = this.lastTerminal;
    if (this.timedOut) {
      return { kind: 'timeout', reason: `the worker did not finish within ${Math.round((this.launch.timeoutMs ?? 0) / 1000)} s and was stopped`, stderrTail: tail };
    }
    if (terminal?.type === 'done' && code === 0) return { kind: 'done', event: terminal, exitCode: code };
    if (terminal?.type === 'error') return { kind: 'error', event: terminal, exitCode: code };
    if (terminal?.type === 'cancelled' || this.cancelRequested || code === 130) {
      return { kind: 'cancelled', event: terminal?.type === 'cancelled' ? terminal : undefined, exitCode: code, signal };
    }
    let reason: string;
    if (signal) reason = `the worker was killed by ${signal}`;
    else if (code === 0) reason = 'the worker exited without reporting a result';
    else reason = `the worker exited with code ${code}`;
    const lastLine = telltaleLine(tail);
    if (lastLine) reason += `: ${lastLine}`;
    return { kind: 'crashed', reason, exitCode: code, signal, stderrTail: tail };
  }
}

/**
 * The most telling stderr line: Node prints "Error: message" and then the stack ("    at ..."), the
 * CLI prints "pas: message", commander "error: unknown command ..." before its usage text; fall
 * back to the last non-empty line.
 */
export function telltaleLine(text: string): string | undefined {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  const telling = [...lines].reverse().find((l) => /^(\w*Error\b|error:|pas:|fatal\b)/i.test(l));
  return telling ?? lines[lines.length - 1];
}

/** Starts a worker; see `WorkerRun`. */
export function startWorker(launch: WorkerLaunch, callbacks?: WorkerCallbacks): WorkerRun {
  return new WorkerRun(launch, callbacks);
}
