/**
 * A replica thread of data-parallel training (see protocol.ts): its own wasm backend with the
 * project's training kernels and its own copy of the model, kept across epochs (a new model per
 * epoch would grow the wasm heap, which never shrinks), updated from the shared exchange.
 */
import { parentPort } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backends';
// Registers the DBC mask layer, so that masked models deserialize here too.
import '../../layers/registered';
import type { FromReplica, ToReplica } from './protocol';
import { ExchangeViews } from './exchange';
import { assignFlat, FlatMomentum, flatLayout, readLayerWeights, writeLayerWeights, shardGradients, weightsAt, type FlatLayout, type ModelWeight } from './shardStep';

interface ReplicaState {
  model?: tf.LayersModel;
  variables: tf.Variable[];
  movingStats: ModelWeight[];
  exchange?: ExchangeViews;
  slot: number;
  layout: FlatLayout;
  statLayout: FlatLayout;
  /** Time spent applying the last update, reported with the next step's gradients. */
  lastApplyMs: number;
  /** SGD momentum over the exchange's shared momentum buffer (this replica updates its range). */
  optimizer: FlatMomentum;
}

const empty = flatLayout([]);
const state: ReplicaState = { variables: [], movingStats: [], slot: 0, layout: empty, statLayout: empty, lastApplyMs: 0, optimizer: new FlatMomentum(new Float32Array(0)) };

function send(message: FromReplica, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(message, transfer);
}

function setUp(model: tf.LayersModel, message: Extract<ToReplica, { type: 'model' | 'sync' }>): void {
  state.model = model;
  const weights = model.weights;
  state.variables = message.trainable.map((i) => weights[i].read() as tf.Variable);
  state.movingStats = weightsAt(model, message.movingStats);
  state.layout = flatLayout(state.variables.map((v) => v.shape));
  state.statLayout = flatLayout(message.movingStats.map((i) => weights[i].shape as number[]));
  // Views of an exchange already held are kept (with the SIMD step bound to its memory), not made again each epoch.
  if (!state.exchange?.sameExchange(message.exchange)) {
    state.exchange = new ExchangeViews(message.exchange);
    state.optimizer = new FlatMomentum(state.exchange.accumulation);
  }
  state.slot = message.slot;
  if (state.layout.total !== message.exchange.gradientLength || state.statLayout.total !== message.exchange.statLength) {
    throw new Error(`the replica's model does not match the exchange (${state.layout.total}/${message.exchange.gradientLength} gradient values, ${state.statLayout.total}/${message.exchange.statLength} statistics)`);
  }
}

async function handle(message: ToReplica): Promise<void> {
  switch (message.type) {
    case 'model': {
      state.model?.dispose();
      state.model = undefined;
      const model = await tf.loadLayersModel(
        tf.io.fromMemory({ modelTopology: message.model.modelTopology as object, weightSpecs: message.model.weightSpecs as tf.io.WeightsManifestEntry[], weightData: message.model.weightData }),
      );
      setUp(model, message);
      collectGarbageIfExposed();
      send({ type: 'loaded', rebuilt: true });
      return;
    }
    case 'sync': {
      const model = state.model!;
      setUp(model, message);
      writeLayerWeights(model.weights, state.exchange!.modelWeights, flatLayout(model.weights.map((w) => w.shape as number[])));
      collectGarbageIfExposed();
      send({ type: 'loaded', rebuilt: false });
      return;
    }
    case 'step': {
      const started = performance.now();
      const exchange = state.exchange!;
      const x = tf.tensor(message.x, message.xShape);
      const y = tf.tensor(message.y, message.yShape);
      const result = shardGradients(state.model!, x, y, message.scale, state.variables, exchange.gradientSlots[state.slot], state.layout);
      tf.dispose([x, y]);
      readLayerWeights(state.movingStats, exchange.statSlots[state.slot], state.statLayout);
      send({ type: 'gradients', step: message.step, loss: result.crossEntropy, correct: result.correct, computeMs: performance.now() - started, applyMs: state.lastApplyMs });
      return;
    }
    case 'reduce': {
      const exchange = state.exchange!;
      state.optimizer.configure(message.learningRate, message.momentum);
      const squares = state.optimizer.apply(exchange.weights, exchange.gradientSlots.slice(0, message.threads), message.from, message.to, message.decay);
      send({ type: 'reduced', step: message.step, squares });
      return;
    }
    case 'apply': {
      const started = performance.now();
      const exchange = state.exchange!;
      assignFlat(state.variables, exchange.weights, state.layout);
      writeLayerWeights(state.movingStats, exchange.stats, state.statLayout);
      state.lastApplyMs = performance.now() - started;
      return;
    }
    case 'weights':
      send({ type: 'weights', weights: state.model!.weights.map((w) => Float32Array.from(w.read().dataSync() as Float32Array)) });
      return;
    case 'memory': {
      const backend = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
      send({ type: 'memory', numTensors: tf.memory().numTensors, heapBytes: backend.wasm.HEAPU8.byteLength });
      return;
    }
    case 'close':
      state.model?.dispose();
      parentPort!.close();
      return;
  }
}

/**
 * Once an epoch, where node runs with --expose-gc (the long-run memory test): as the main thread
 * does before it reports resident memory, so that the figure is live memory, not V8's backlog.
 */
function collectGarbageIfExposed(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

// Messages are handled one at a time, in order, after the backend started: an 'apply' always
// lands before the next 'step'.
let queue: Promise<void> = initBackend('wasm').then(
  () => send({ type: 'ready' }),
  (error: Error) => send({ type: 'error', message: `the replica's wasm backend did not start: ${error.message}` }),
);
parentPort!.on('message', (message: ToReplica) => {
  queue = queue.then(() => handle(message)).catch((error: Error) => send({ type: 'error', message: error.stack ?? error.message }));
});
