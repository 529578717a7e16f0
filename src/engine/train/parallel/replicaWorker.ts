/**
 * A replica thread of data-parallel training (see protocol.ts): its own wasm backend with the
 * project's training kernels, its own copy of the model, and its own optimizer that applies the
 * same summed gradients as every other replica.
 */
import { parentPort } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../backends';
// Registers the DBC mask layer, so that masked models deserialize here too.
import '../../layers/dbc';
import type { FromReplica, ToReplica } from './protocol';
import { applyUpdate, setMovingStats, shardGradients, readMovingStats } from './shardStep';
import { disposeMomentumOptimizer } from '../trainer';

interface ReplicaState {
  model?: tf.LayersModel;
  variables: tf.Variable[];
  movingStats: number[];
  optimizer?: tf.MomentumOptimizer;
}

const state: ReplicaState = { variables: [], movingStats: [] };

function send(message: FromReplica, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(message, transfer);
}

async function handle(message: ToReplica): Promise<void> {
  switch (message.type) {
    case 'model': {
      state.model?.dispose();
      const model = await tf.loadLayersModel(
        tf.io.fromMemory({ modelTopology: message.model.modelTopology as object, weightSpecs: message.model.weightSpecs as tf.io.WeightsManifestEntry[], weightData: message.model.weightData }),
      );
      state.model = model;
      state.variables = message.trainable.map((i) => model.weights[i].read() as tf.Variable);
      state.movingStats = message.movingStats;
      send({ type: 'loaded' });
      return;
    }
    case 'optimizer':
      if (state.optimizer) disposeMomentumOptimizer(state.optimizer);
      state.optimizer = tf.train.momentum(message.learningRate, message.momentum);
      return;
    case 'step': {
      const model = state.model!;
      const x = tf.tensor(message.x, message.xShape);
      const y = tf.tensor(message.y, message.yShape);
      const result = shardGradients(model, x, y, message.scale, state.variables);
      tf.dispose([x, y]);
      const movingStats = readMovingStats(model, state.movingStats);
      send(
        { type: 'gradients', step: message.step, gradients: result.gradients, movingStats, loss: result.crossEntropy, correct: result.correct },
        [...result.gradients, ...movingStats].map((a) => a.buffer as ArrayBuffer),
      );
      return;
    }
    case 'apply':
      applyUpdate(state.optimizer!, state.variables, message.gradients);
      setMovingStats(state.model!, state.movingStats, message.movingStats);
      return;
    case 'weights':
      send({ type: 'weights', weights: state.model!.weights.map((w) => Float32Array.from(w.read().dataSync() as Float32Array)) });
      return;
    case 'close':
      state.model?.dispose();
      if (state.optimizer) disposeMomentumOptimizer(state.optimizer);
      parentPort!.close();
      return;
  }
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

