import type { BackendName, WorkerEvent } from '../shared/workerProtocol';
import { WORKER_PROTOCOL_VERSION } from '../shared/workerProtocol';

export { formatCount } from '../shared/format';

/**
 * Where a command's results go: JSON lines on stdout (`--json`, the worker protocol), or text
 * for a person (results on stdout, progress and notes on stderr).
 */
export class Output {
  /** Set once the backend ladder ran; every `start` event (search, inspect, reparam) carries them. */
  backend: BackendName | undefined;
  backendNote: string | undefined;

  constructor(readonly json: boolean) {}

  /** A protocol event; ignored in text mode (text output is written by `text`). */
  event(event: WorkerEvent): void {
    if (this.json) process.stdout.write(JSON.stringify(event) + '\n');
  }

  start(command: 'search' | 'inspect' | 'reparam', model: string, extra: { backend?: any; seed?: number } = {}): void {
    const ladder = { ...(this.backend !== undefined ? { backend: this.backend } : {}), ...(this.backendNote !== undefined ? { backendNote: this.backendNote } : {}) };
    this.event({ type: 'start', protocol: WORKER_PROTOCOL_VERSION, command, model, pid: process.pid, ...ladder, ...extra });
  }

  /** Text for a person, on stdout; nothing in JSON mode. */
  text(line = ''): void {
    if (!this.json) process.stdout.write(line + '\n');
  }

  /** A note for a person, on stderr in both modes (the extension shows stderr in its log). */
  note(line: string): void {
    process.stderr.write(line + '\n');
  }
}

/** Right-aligns numbers and left-aligns text in columns. */
export function formatTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells
    .map((r) => r.map((c, i) => (numeric[i] ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join('  ').trimEnd())
    .join('\n');
}

export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  return value.toFixed(4);
}
