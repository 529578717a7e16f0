/**
 * Splits a worker's stdout into JSON events.
 *
 * Chunks from a pipe end anywhere (mid-line, mid-UTF-8 character), so bytes are buffered until a
 * newline. Each complete line that parses to an object with a string `type` is an event; any other
 * line (a stray `console.log` from a dependency, a warning) is passed on as log text instead of
 * breaking the stream.
 */
import { StringDecoder } from 'string_decoder';
import type { WorkerEvent } from '../../shared/workerProtocol';

export interface LineSinks {
  onEvent(event: WorkerEvent): void;
  onText(line: string): void;
}

/** A line longer than this without a newline is flushed as text, so a runaway line cannot grow memory. */
const MAX_LINE_CHARS = 8 * 1024 * 1024;

export class JsonLineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private pending = '';

  constructor(private readonly sinks: LineSinks) {}

  /** Feeds one chunk (Buffer or string) from the stream. */
  push(chunk: Buffer | string): void {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      this.handleLine(line);
      newline = this.pending.indexOf('\n');
    }
    if (this.pending.length > MAX_LINE_CHARS) {
      const line = this.pending;
      this.pending = '';
      this.sinks.onText(line);
    }
  }

  /** Flushes the last line when the stream ends without a trailing newline. */
  end(): void {
    this.pending += this.decoder.end();
    if (this.pending.length > 0) {
      const line = this.pending;
      this.pending = '';
      this.handleLine(line);
    }
  }

  private handleLine(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const event = parseEventLine(line);
    if (event) this.sinks.onEvent(event);
    else this.sinks.onText(line);
  }
}

/** Parses one line; returns undefined unless it is a JSON object with a string `type`. */
export function parseEventLine(line: string): WorkerEvent | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(trimmed);
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { type?: unknown }).type === 'string') {
      return value as WorkerEvent;
    }
  } catch {
    // not JSON: handled as text by the caller
  }
  return undefined;
}
