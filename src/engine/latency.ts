/**
 * Measured latency of a model on the active backend: the median wall time of repeated forward
 * passes after a warm-up, for the whole model and for each layer.
 *
 * Whole model: `model.execute` on a fixed input, then a read-back (`dataSync`).
 *
 * Per-layer method: one forward pass records every layer's input tensors; then each run times
 * every layer's own `apply` on those recorded inputs, one layer after the other, and reads the
 * result back (`dataSync`) so that lazy backends (webgl) finish the work inside the timing. On the
 * backends that compute each op when it is called (wasm, cpu) there is no read-back: it copied the
 * whole output into a new JS array, and those copies (4.8 MB for MobileNetV2's 112x112x96 maps)
 * set off garbage collections that landed on the same large layers run after run (a ReLU6 timed at
 * 21 ms in one model and under 1 ms in its pruned twin, on the same machine). The medians
 * per layer are over the same runs; their sum is usually a little above the whole-model median
 * (one read-back per layer instead of one per model). Timing the layers interleaved in each run,
 * rather than one layer many times in a row, spreads a busy spell of a shared machine over all of
 * them instead of charging it to one.
 */
import * as tf from '@tensorflow/tfjs';
import type { LatencyReport } from '../shared/workerProtocol';

export type { LatencyReport };

export interface LatencyOptions {
  /** Images per forward pass (default 1: the latency a deployed model sees). */
  batch?: number;
  /** Untimed passes first (kernel set-up, caches; default 3). */
  warmup?: number;
  /** Timed passes; the median is reported (default 20). */
  runs?: number;
  /** Skip the per-layer profile (the whole-model median only). */
  perLayer?: boolean;
}

/** The median of a list of timings (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Deterministic input: latency does not depend on the values, and a seed keeps runs comparable. */
function probeInput(model: tf.LayersModel, batch: number): tf.Tensor {
  const shape = model.inputs[0].shape.slice(1).map((d) => d ?? 1);
  return tf.randomUniform([batch, ...shape], -1, 1, 'float32', 7);
}

function timeMs(run: () => void): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

/** Timed passes of one model, one run at a time (so that two models' runs can alternate). */
class LatencySession {
  private readonly input: tf.Tensor;
  private readonly forward: () => void;
  private readonly layers: LayerCall[];
  private readonly totals: number[] = [];
  private readonly perLayerSamples: number[][];

  constructor(model: tf.LayersModel, private readonly batch: number, private readonly warmup: number, perLayer: boolean) {
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`latency batch must be a positive integer, got ${batch}`);
    this.input = probeInput(model, batch);
    const input = this.input;
    // `execute` is the graph executor itself: `predict` adds input checks and batching that cost
    // more than a small model's whole forward pass at batch 1 (15 ms against 0.6 ms measured on
    // builtin:default), which is the caller's overhead, not the model's.
    const outputName = model.outputs[0].name;
    this.forward = () => tf.tidy(() => {
      (model.execute(input, outputName) as tf.Tensor).dataSync();
    });
    this.layers = perLayer ? layerCalls(model, input) : [];
    this.perLayerSamples = this.layers.map(() => []);
    for (let i = 0; i < warmup; i++) {
      this.forward();
      for (const layer of this.layers) layer.run();
    }
  }

  /** One timed pass of the whole model, then of each layer. */
  runOnce(): void {
    this.totals.push(timeMs(this.forward));
    this.layers.forEach((layer, i) => this.perLayerSamples[i].push(timeMs(layer.run)));
  }

  /**
   * The fastest whole pass so far: on a loaded machine nearly every pass is preempted, and the
   * fastest one is the closest to the model's own cost (the bench reports it beside the median).
   */
  fastestMs(): number {
    return Math.min(...this.totals);
  }

  /** The medians so far; frees the recorded tensors. */
  finish(): LatencyReport {
    for (const layer of this.layers) layer.dispose();
    this.input.dispose();
    return {
      backend: tf.getBackend(),
      batch: this.batch,
      warmup: this.warmup,
      runs: this.totals.length,
      medianMs: median(this.totals),
      perLayer: this.layers.map((layer, i) => ({ name: layer.name, type: layer.type, medianMs: median(this.perLayerSamples[i]) })),
    };
  }
}

/** Median latency of `model` (inference mode) on the active backend, whole and per layer. */
export function measureLatency(model: tf.LayersModel, options: LatencyOptions = {}): LatencyReport {
  const session = new LatencySession(model, options.batch ?? 1, options.warmup ?? 3, options.perLayer !== false);
  const runs = Math.max(1, options.runs ?? 20);
  for (let r = 0; r < runs; r++) session.runOnce();
  return session.finish();
}

interface LayerCall {
  name: string;
  type: string;
  run: () => void;
  dispose: () => void;
}

/** Backends whose kernels have finished when the op call returns (no read-back needed to time them). */
const SYNCHRONOUS_BACKENDS = new Set(['wasm', 'cpu']);

/** Every non-input layer with its recorded inputs from one forward pass of `input`. */
function layerCalls(model: tf.LayersModel, input: tf.Tensor): LayerCall[] {
  const computesWhenCalled = SYNCHRONOUS_BACKENDS.has(tf.getBackend());
  // Each layer at its first call site (a deployed model calls every layer once).
  const timed = model.layers.filter((l) => l.getClassName() !== 'InputLayer' && l.inboundNodes.length > 0);
  const symbolicOutputs = timed.map((l) => l.inboundNodes[0].outputTensors[0]);
  // A model that returns every layer's output: one pass gives all inputs of all layers.
  const probe = tf.model({ inputs: model.inputs, outputs: symbolicOutputs });
  const outputs = probe.predict(input) as tf.Tensor | tf.Tensor[];
  const concrete = new Map<number, tf.Tensor>([[model.inputs[0].id, input]]);
  (Array.isArray(outputs) ? outputs : [outputs]).forEach((t, i) => concrete.set(symbolicOutputs[i].id, t));
  return timed.map((layer, index) => {
    const symbolicInputs = layer.inboundNodes[0].inputTensors;
    const inputs = symbolicInputs.map((s) => {
      const t = concrete.get(s.id);
      if (!t) throw new Error(`latency: no recorded input for layer ${layer.name}`);
      return t;
    });
    return {
      name: layer.name,
      type: layer.getClassName(),
      run: () => tf.tidy(() => {
        const output = layer.apply(inputs.length === 1 ? inputs[0] : inputs) as tf.Tensor;
        if (!computesWhenCalled) output.dataSync();
      }),
      dispose: () => {
        const output = concrete.get(symbolicOutputs[index].id);
        if (output && output !== input) output.dispose();
      },
    };
  });
}

/** "-42%" style change from `before` to `after` (negative: smaller). */
export function percentChange(before: number, after: number): string {
  const change = (100 * (after - before)) / before;
  return `${change > 0 ? '+' : ''}${change.toFixed(0)}%`;
}

/** What a search adds to its report: both deployed models' latency, and per layer, joined by name. */
export interface LatencyComparison {
  latencyBefore: number;
  latencyAfter: number;
  latencyLayers: Array<{ name: string; type: string; beforeMs: number; afterMs?: number }>;
}

/**
 * Latency of the unpruned deployed model and the pruned one at batch 1, on the active backend.
 * Their runs alternate (before, after, before, ...) so that a busy spell of a shared machine
 * lands on both alike.
 */
export function compareLatency(before: tf.LayersModel, after: tf.LayersModel, runs = 20): LatencyComparison {
  const [b, a] = measureAlternating([before, after], runs);
  return joinLatencies(b, a);
}

/**
 * Median latency of several models at batch 1, whole and per layer, their runs interleaved
 * (model 1, model 2, ..., model 1, ...) so that a busy spell of a shared machine lands on all alike.
 */
export function measureAlternating(models: tf.LayersModel[], runs = 20): Array<LatencyReport & { minMs: number }> {
  const sessions = models.map((model) => new LatencySession(model, 1, 3, true));
  for (let r = 0; r < runs; r++) for (const session of sessions) session.runOnce();
  return sessions.map((s) => ({ ...s.finish(), minMs: s.fastestMs() }));
}

/** Two latency reports as a before/after comparison, layers joined by name. */
export function joinLatencies(b: LatencyReport, a: LatencyReport): LatencyComparison {
  const afterMs = new Map(a.perLayer.map((l) => [l.name, l.medianMs]));
  return {
    latencyBefore: b.medianMs,
    latencyAfter: a.medianMs,
    latencyLayers: b.perLayer.map((l) => ({ name: l.name, type: l.type, beforeMs: l.medianMs, afterMs: afterMs.get(l.name) })),
  };
}
