// The worker runner against test/fixtures/fake-worker.js, and history replay: the snapshot a
// re-shown panel gets folds to the same state as a live panel that saw every delta.
import { strict as assert } from 'assert';
import * as path from 'path';
import { startWorker, telltaleLine } from '../../src/extension/core/workerRunner';
import { DeltaThrottle, SearchHistory } from '../../src/extension/core/searchHistory';
import { foldSearchEvents, initialSearchState } from '../../webview/searchState';
import type { WorkerEvent } from '../../src/shared/workerProtocol';

const FAKE = path.join(__dirname, '..', 'fixtures', 'fake-worker.js');

function runFake(mode: string, extra: string[] = [], opts: { timeoutMs?: number; cancelGraceMs?: number } = {}) {
  const events: WorkerEvent[] = [];
  const texts: string[] = [];
  let stderr = '';
  const run = startWorker(
    { executable: process.execPath, args: [FAKE, mode, ...extra], ...opts },
    { onEvent: (e) => events.push(e), onStdoutText: (t) => texts.push(t), onStderr: (t) => (stderr += t) },
  );
  return { run, events, texts, stderr: () => stderr };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('extension: worker runner (fake worker)', function () {
  this.timeout(20_000);

  it('delivers events in order, non-JSON lines as text, and ends with done', async () => {
    const { run, events, texts, stderr } = runFake('events', ['5']);
    const outcome = await run.outcome;
    assert.equal(outcome.kind, 'done');
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 3), ['start', 'model', 'phase']);
    const epochs = events.filter((e) => e.type === 'epoch').map((e) => (e as { epoch: number }).epoch);
    assert.deepEqual(epochs, [1, 2, 3, 4, 5]);
    assert.equal(types[types.length - 1], 'done');
    assert.deepEqual(texts, ['this is not json']);
    assert.ok(events.some((e) => e.type === 'log' && e.message === 'größe ✓'));
    assert.match(stderr(), /loading data/);
  });

  it('reports a crash (non-zero exit, no error event) with the error line from stderr', async () => {
    const outcome = await runFake('crash').run.outcome;
    assert.equal(outcome.kind, 'crashed');
    if (outcome.kind !== 'crashed') return;
    assert.equal(outcome.exitCode, 3);
    assert.match(outcome.reason, /exited with code 3: Error: Kernel 'Conv2DBackpropFilter' not registered/);
    assert.match(outcome.stderrTail, /at train/);
  });

  it('picks the telling stderr line for the crash reason', () => {
    assert.equal(telltaleLine("error: unknown command 'search'\n\nUsage: pas [options]\n  help [command]  display help\n"), "error: unknown command 'search'");
    assert.equal(telltaleLine('loading\npas: model.json: the JSON is truncated\n'), 'pas: model.json: the JSON is truncated');
    assert.equal(telltaleLine('TypeError: x is not a function\n    at f (a.js:1:1)\n'), 'TypeError: x is not a function');
    assert.equal(telltaleLine('just a line\nlast line\n'), 'last line');
    assert.equal(telltaleLine(''), undefined);
  });

  it('reports death by signal as a crash', async () => {
    const outcome = await runFake('signal').run.outcome;
    assert.equal(outcome.kind, 'crashed');
    if (outcome.kind === 'crashed') {
      assert.equal(outcome.signal, 'SIGKILL');
      assert.match(outcome.reason, /killed by SIGKILL: about to die/);
    }
  });

  it('reports an error event as a user-facing error, not a crash', async () => {
    const outcome = await runFake('error').run.outcome;
    assert.equal(outcome.kind, 'error');
    if (outcome.kind === 'error') assert.match(outcome.event.message, /not a Layers model/);
  });

  it('treats exit 0 without done as a crash', async () => {
    const outcome = await runFake('silent-exit').run.outcome;
    assert.equal(outcome.kind, 'crashed');
  });

  it('cancels a cooperative worker with SIGINT and gets its cancelled event', async () => {
    const { run, events } = runFake('cancellable');
    while (!events.some((e) => e.type === 'batch')) await new Promise((r) => setTimeout(r, 20));
    run.cancel();
    const outcome = await run.outcome;
    assert.equal(outcome.kind, 'cancelled');
    if (outcome.kind === 'cancelled') {
      assert.equal(outcome.exitCode, 130);
      assert.equal(outcome.event?.checkpoint, '/tmp/fake-ckpt');
    }
  });

  it('kills a worker that ignores SIGINT, and its grandchild, within the grace period', async () => {
    const { run, events } = runFake('hang', [], { cancelGraceMs: 300 });
    let grandchild = 0;
    while (!grandchild) {
      const log = events.find((e) => e.type === 'log');
      if (log && log.type === 'log') grandchild = Number(log.message.split(' ')[1]);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(alive(grandchild));
    const t0 = Date.now();
    run.cancel();
    const outcome = await run.outcome;
    assert.equal(outcome.kind, 'cancelled');
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    // The grandchild was in the same process group: give the kernel a moment to reap it.
    const deadline = Date.now() + 2000;
    while (alive(grandchild) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(grandchild), false, 'grandchild survived');
  });

  it('times out a hanging worker', async () => {
    const outcome = await runFake('hang', [], { timeoutMs: 300 }).run.outcome;
    assert.equal(outcome.kind, 'timeout');
  });

  it('leaves no listeners or handles behind over 30 worker runs (finished, crashed, cancelled)', async function () {
    this.timeout(60_000);
    const watched = ['exit', 'SIGINT', 'SIGTERM', 'uncaughtException'] as const;
    const listeners = () => watched.map((name) => process.listenerCount(name));
    const handles = () => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
    const before = { listeners: listeners(), handles: handles() };
    for (let i = 0; i < 10; i++) {
      await runFake('events').run.outcome;
      await runFake('crash').run.outcome;
      const cancellable = runFake('cancellable', [], { cancelGraceMs: 2000 });
      cancellable.run.cancel();
      await cancellable.run.outcome;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(listeners(), before.listeners);
    assert.ok(handles() <= before.handles, `${handles()} active handles after, ${before.handles} before`);
  });

  it('reports an executable that cannot start', async () => {
    const outcome = await startWorker({ executable: '/nonexistent/node', args: [] }).outcome;
    assert.equal(outcome.kind, 'spawnFailed');
  });
});

/** A deterministic event stream like a real search: many batches between epochs. */
function syntheticRun(epochs: number, batchesPerEpoch: number): WorkerEvent[] {
  const events: WorkerEvent[] = [
    { type: 'start', protocol: 1, command: 'search', model: 'builtin:default', pid: 1 },
    { type: 'model', groups: [{ name: 'a', originalWidth: 8, searchedWidth: 8 }, { name: 'b', originalWidth: 16, searchedWidth: 16 }], macsOriginal: 100, macsTarget: 50, paramsOriginal: 10 },
    { type: 'phase', phase: 'search', epochs },
  ];
  for (let e = 1; e <= epochs; e++) {
    for (let b = 1; b <= batchesPerEpoch; b++) {
      events.push({ type: 'batch', phase: 'search', epoch: e, batch: b, batches: batchesPerEpoch, loss: 1 / b, accuracy: b / batchesPerEpoch, macs: 100 - e - b, etaSeconds: 1 });
      if (b % 3 === 0) events.push({ type: 'log', message: `b${b}` });
    }
    events.push({ type: 'epoch', phase: 'search', epoch: e, epochs, loss: 1 / e, accuracy: 0.5, valAccuracy: 0.5, macs: 100 - 5 * e, params: 10 - e, widths: [8 - e, 16 - e] });
    events.push({ type: 'checkpoint', path: `/ck/${e}`, phase: 'search', epoch: e });
  }
  return events;
}

describe('extension: history replay', () => {
  it('a snapshot after every prefix folds to the live state', () => {
    const all = syntheticRun(4, 7);
    all.push({ type: 'done', outputDir: '/out' });
    const history = new SearchHistory();
    let live = initialSearchState();
    for (const event of all) {
      history.append(event);
      live = foldSearchEvents([event], live);
      assert.deepEqual(foldSearchEvents(history.snapshot()), live);
    }
    // and the snapshot is compact: no logs, no superseded batches
    const snapshot = history.snapshot();
    assert.equal(snapshot.filter((e) => e.type === 'log').length, 0);
    assert.ok(snapshot.length < all.length / 2, `${snapshot.length} of ${all.length}`);
    assert.equal(history.received, all.length);
  });

  it('a panel that gets a snapshot mid-run and then throttled deltas ends in the same state', () => {
    const all = syntheticRun(3, 10);
    all.push({ type: 'done', outputDir: '/out' });
    let clock = 0;
    const timers: Array<{ at: number; fn: () => void }> = [];
    const history = new SearchHistory();
    let panel = initialSearchState();
    let posts = 0;
    const throttle = new DeltaThrottle(
      (events) => {
        posts++;
        panel = foldSearchEvents(events, panel);
      },
      100,
      () => clock,
      (fn, ms) => {
        const t = { at: clock + ms, fn };
        timers.push(t);
        return t;
      },
      (t) => timers.splice(timers.indexOf(t as (typeof timers)[number]), 1),
    );
    all.forEach((event, i) => {
      clock += 5;
      for (const t of timers.filter((t) => t.at <= clock)) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
      history.append(event);
      throttle.push(event);
      if (i === 20) {
        // the panel is hidden and re-shown: pending deltas are dropped, a snapshot replaces the state
        throttle.discard();
        panel = foldSearchEvents(history.snapshot());
      }
    });
    throttle.flushNow();
    assert.deepEqual(panel, foldSearchEvents(all));
    assert.ok(posts < all.length / 3, `${posts} posts for ${all.length} events`);
  });

  it('a flood of 10,000 batch events in one second reaches the panel as at most one post per interval, each small', () => {
    let clock = 0;
    const timers: Array<{ at: number; fn: () => void }> = [];
    const posts: WorkerEvent[][] = [];
    const throttle = new DeltaThrottle(
      (events) => posts.push(events),
      150,
      () => clock,
      (fn, ms) => {
        const timer = { at: clock + ms, fn };
        timers.push(timer);
        return timer;
      },
      (t) => timers.splice(timers.indexOf(t as (typeof timers)[number]), 1),
    );
    const runDueTimers = () => {
      for (const t of timers.filter((t) => t.at <= clock)) {
        timers.splice(timers.indexOf(t), 1);
        t.fn();
      }
    };
    for (let i = 0; i < 10_000; i++) {
      clock = i / 10; // 10,000 events over 1,000 ms
      runDueTimers();
      throttle.push({ type: 'batch', phase: 'search', epoch: 1, batch: i + 1, batches: 10_000, loss: 1, accuracy: 0.5, macs: 1, etaSeconds: 1 });
    }
    throttle.push({ type: 'done' });
    assert.ok(posts.length <= Math.ceil(1000 / 150) + 2, `${posts.length} posts`);
    // Batch events are compacted: a post carries the latest batch, not the backlog.
    assert.ok(posts.every((p) => p.length <= 2), `post sizes ${posts.map((p) => p.length)}`);
    const last = posts[posts.length - 1];
    assert.equal(last[last.length - 1].type, 'done');
  });
});
