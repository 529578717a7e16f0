/**
 * The host-owned history of one search, and the throttle between it and the webview.
 *
 * The history is what a (re)loaded panel gets as its snapshot, so it stays small: a run of
 * `batch` events collapses to the latest one (the panel only shows the latest batch), and `log`
 * events are not kept (they go to the Output channel). Everything else is kept in order. The
 * compaction rules mirror `webview/searchState.ts`: folding the compacted history gives the same
 * state as folding every event.
 */
import type { WorkerEvent } from '../../shared/workerProtocol';

function isPanelEvent(e: WorkerEvent): boolean {
  return e.type !== 'log' && e.type !== 'inspect' && e.type !== 'reparam';
}

/** Appends `event` to `list` with the compaction rules, in place. */
function appendCompacted(list: WorkerEvent[], event: WorkerEvent): void {
  if (!isPanelEvent(event)) return;
  if (event.type === 'batch' && list.length > 0 && list[list.length - 1].type === 'batch') {
    list[list.length - 1] = event;
  } else {
    list.push(event);
  }
}

export class SearchHistory {
  private readonly events: WorkerEvent[] = [];
  private total = 0;

  append(event: WorkerEvent): void {
    this.total++;
    appendCompacted(this.events, event);
  }

  /** A copy of the compacted history, for an `init` snapshot. */
  snapshot(): WorkerEvent[] {
    return this.events.slice();
  }

  /** Number of events received (before compaction). */
  get received(): number {
    return this.total;
  }
}

/**
 * Collects events and hands them out at most once per `intervalMs`, compacted like the history,
 * so a flood of worker events turns into a few `postMessage` calls. The timer functions are
 * injectable for tests.
 */
export class DeltaThrottle {
  private pending: WorkerEvent[] = [];
  private timer: unknown;
  private lastFlush = -Infinity;

  constructor(
    private readonly flush: (events: WorkerEvent[]) => void,
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
    private readonly setTimer: (fn: () => void, ms: number) => unknown = (fn, ms) => setTimeout(fn, ms),
    private readonly clearTimer: (t: unknown) => void = (t) => clearTimeout(t as NodeJS.Timeout),
  ) {}

  push(event: WorkerEvent): void {
    appendCompacted(this.pending, event);
    if (this.pending.length === 0) return;
    // Terminal events go out at once: the user should see "done" without a delay.
    const terminal = event.type === 'done' || event.type === 'cancelled' || event.type === 'error';
    if (terminal) return this.flushNow();
    if (this.timer !== undefined) return;
    const wait = this.lastFlush + this.intervalMs - this.now();
    if (wait <= 0) this.flushNow();
    else this.timer = this.setTimer(() => this.flushNow(), wait);
  }

  /** Sends what is pending now (also used before a snapshot, so deltas and snapshot never overlap). */
  flushNow(): void {
    if (this.timer !== undefined) {
      this.clearTimer(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.lastFlush = this.now();
    this.flush(events);
  }

  /** Drops pending events (the panel will get a snapshot instead). */
  discard(): void {
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
    this.pending = [];
  }

  dispose(): void {
    this.discard();
  }
}
