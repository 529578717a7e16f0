/**
 * The replica threads of data-parallel training: starting them, talking to them (protocol.ts),
 * and stopping them. The main thread is itself a replica; the pool holds the other ones.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { FromReplica, ModelTransfer, ToReplica } from './protocol';
import type { ExchangeViews } from './exchange';
import { flatLayout, readLayerWeights, type WeightDecay } from './shardStep';
import { restoreDepthMultipliers } from '../../io/saveModel';

/** The bundled replica entry (esbuild.js builds it next to cli.js), from dist/, dist/bench/ or the sources (tests). */
export function replicaScriptPath(): string {
  const candidates = [
    path.join(__dirname, 'replicaWorker.js'),
    path.join(__dirname, '..', 'replicaWorker.js'),
    path.resolve(__dirname, '..', '..', '..', '..', 'dist', 'replicaWorker.js'),
  ];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`the data-parallel replica script is missing (looked for ${candidates.join(', ')}); run \`node esbuild.js\``);
  return found;
}

interface Pending {
  expect: FromReplica['type'];
  resolve: (message: FromReplica) => void;
  reject: (error: Error) => void;
}

class Replica {
  private readonly pending: Pending[] = [];
  failure?: Error;

  constructor(readonly worker: Worker, readonly index: number) {
    worker.on('message', (message: FromReplica) => this.receive(message));
    worker.on('error', (error) => this.fail(new Error(`replica ${index} crashed: ${error.message}`)));
    worker.on('exit', (code) => this.fail(new Error(`replica ${index} exited (code ${code})`)));
    // An idle replica must not keep the process alive; one with a reply pending must.
    worker.unref();
  }

  send(message: ToReplica, transfer: ArrayBuffer[] = []): void {
    if (this.failure) throw this.failure;
    this.worker.postMessage(message, transfer);
  }

  /** The next reply of type `expect` (replies come in the order their requests were sent). */
  reply<T extends FromReplica['type']>(expect: T): Promise<Extract<FromReplica, { type: T }>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ expect, resolve: resolve as (m: FromReplica) => void, reject });
      this.worker.ref();
    });
  }

  private receive(message: FromReplica): void {
    if (message.type === 'error') {
      this.fail(new Error(`replica ${this.index}: ${message.message}`));
      return;
    }
    const next = this.pending.shift();
    if (this.pending.length === 0) this.worker.unref();
    if (!next) return;
    if (next.expect !== message.type) next.reject(new Error(`replica ${this.index} sent '${message.type}', expected '${next.expect}'`));
    else next.resolve(message);
  }

  fail(error: Error): void {
    this.failure ??= error;
    for (const p of this.pending.splice(0)) p.reject(this.failure);
    this.worker.unref();
  }
}

/** A shard of one batch for one replica. */
export interface Shard {
  x: Float32Array;
  xShape: number[];
  y: Float32Array;
  yShape: number[];
  scale: number;
}

export class ReplicaPool {
  /** The topology (JSON) the replicas hold, once they hold one. */
  private topology?: string;
  private rebuilt = 0;

  private constructor(private readonly replicas: Replica[]) {}

  /** Starts `count` replica threads, each with its own wasm backend; resolves once all are ready. */
  static async start(count: number): Promise<ReplicaPool> {
    const script = replicaScriptPath();
    const replicas = Array.from({ length: count }, (_, i) => new Replica(new Worker(script), i + 1));
    const pool = new ReplicaPool(replicas);
    try {
      await Promise.all(replicas.map((r) => r.reply('ready')));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.replicas.length;
  }

  get broken(): boolean {
    return this.replicas.some((r) => r.failure !== undefined);
  }

  /**
   * Gives every replica the model for the coming epoch, and the exchange they share with the main
   * thread (slot i for replica i). A replica that already holds a model of the same topology keeps
   * it and takes the weights in place, from the exchange's `modelWeights` (which this fills); only a
   * new topology is serialized and rebuilt. Resolves to the number of replicas that rebuilt their model.
   */
  async loadModel(model: tf.LayersModel, trainable: number[], movingStats: number[], exchange: ExchangeViews): Promise<number> {
    const topology = model.toJSON(null, true) as string;
    const same = topology === this.topology;
    let transfer: ModelTransfer | undefined;
    if (same) readLayerWeights(model.weights, exchange.modelWeights, flatLayout(model.weights.map((w) => w.shape as number[])));
    else transfer = await modelTransfer(model);
    const replies = await Promise.all(
      this.replicas.map((r) => {
        const reply = r.reply('loaded');
        const setup = { trainable, movingStats, exchange: exchange.buffers, slot: r.index };
        r.send(transfer ? { type: 'model', model: transfer, ...setup } : { type: 'sync', ...setup });
        return reply;
      }),
    );
    this.topology = topology;
    this.rebuilt = replies.filter((m) => m.rebuilt).length;
    return this.rebuilt;
  }

  /** Sends shard i to replica i+1 (fewer shards than replicas: the rest sit this step out). */
  computeShards(step: number, shards: Shard[]): Promise<Array<Extract<FromReplica, { type: 'gradients' }>>> {
    return Promise.all(
      shards.map((shard, i) => {
        const replica = this.replicas[i];
        const reply = replica.reply('gradients');
        replica.send({ type: 'step', step, ...shard }, [shard.x.buffer as ArrayBuffer, shard.y.buffer as ArrayBuffer]);
        return reply;
      }),
    );
  }

  /**
   * Replica i+1 updates `ranges[i]` of the exchange's weights (with weight decay); resolves when
   * all have, to the sum of w^2 over the decayed weights of their ranges.
   */
  async reduce(step: number, ranges: Array<[number, number]>, threads: number, learningRate: number, momentum: number, decay: WeightDecay): Promise<number> {
    const replies = await Promise.all(
      ranges.map(([from, to], i) => {
        const replica = this.replicas[i];
        const reply = replica.reply('reduced');
        replica.send({ type: 'reduce', step, from, to, threads, learningRate, momentum, decay });
        return reply;
      }),
    );
    return replies.reduce((sum, r) => sum + r.squares, 0);
  }

  /** Every replica copies the update of `step` from the exchange. */
  apply(step: number): void {
    for (const r of this.replicas) r.send({ type: 'apply', step });
  }

  /** Every replica's weights, in `model.weights` order (for checks). */
  async weights(): Promise<Float32Array[][]> {
    return Promise.all(
      this.replicas.map((r) => {
        const reply = r.reply('weights');
        r.send({ type: 'weights' });
        return reply.then((m) => m.weights);
      }),
    );
  }

  /** Every replica's tensor count and wasm heap size (for checks). */
  async memory(): Promise<Array<{ numTensors: number; heapBytes: number }>> {
    return Promise.all(
      this.replicas.map((r) => {
        const reply = r.reply('memory');
        r.send({ type: 'memory' });
        return reply.then(({ numTensors, heapBytes }) => ({ numTensors, heapBytes }));
      }),
    );
  }

  /** How many replicas rebuilt their model at the last `loadModel` (0: all kept theirs). */
  get lastRebuilt(): number {
    return this.rebuilt;
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.worker.terminate()));
  }
}

/** The model as topology + one weight buffer, the form `tf.io.fromMemory` loads. */
async function modelTransfer(model: tf.LayersModel): Promise<ModelTransfer> {
  let transfer: ModelTransfer | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      transfer = {
        modelTopology: artifacts.modelTopology,
        weightSpecs: artifacts.weightSpecs ?? [],
        weightData: data === undefined ? new ArrayBuffer(0) : Array.isArray(data) ? tf.io.CompositeArrayBuffer.join(data) : data,
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  // The replicas rebuild the model from this topology: it must carry what tfjs's getConfig drops.
  restoreDepthMultipliers(model, transfer!.modelTopology);
  return transfer!;
}

let shared: ReplicaPool | undefined;

/**
 * The process's pool of `count` replica threads, started on first use and kept for the next
 * epochs (starting a wasm backend takes a while); a pool of another size or a broken one is
 * replaced.
 */
export async function sharedReplicaPool(count: number): Promise<ReplicaPool> {
  if (shared && shared.size === count && !shared.broken) return shared;
  if (shared) await shared.close();
  shared = undefined;
  shared = await ReplicaPool.start(count);
  return shared;
}

/** Stops the shared pool's threads (the process can also just exit: idle replicas do not hold it). */
export async function closeSharedReplicaPool(): Promise<void> {
  const pool = shared;
  shared = undefined;
  await pool?.close();
}
