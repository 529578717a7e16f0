/**
 * The nets and the training/inference steps that bench:throughput times, shared with
 * concurrent-step.ts (the same step in separate processes, to measure what the machine's two
 * cores give together).
 */
import * as tf from '@tensorflow/tfjs';
import { buildRepVgg } from '../src/engine/zoo/repvgg';
import { buildReferenceNet } from './reference-net';
import { buildMobileNetV2 } from './mobilenet-v2';

export type NetName = 'reference' | 'repvgg-a0-x0.5' | 'mobilenetv2-224';
export type Mode = 'train' | 'infer';

export const BATCH = 64;
export interface NetSpec {
  inputShape: [number, number, number];
  classes: number;
  batch: number;
  /** Steps of one timed data-parallel epoch. */
  parallelSteps: number;
  build: () => tf.LayersModel;
}
export const ALL_NETS: Record<NetName, NetSpec> = {
  reference: { inputShape: [28, 28, 1], classes: 10, batch: BATCH, parallelSteps: 24, build: () => buildReferenceNet(1) },
  'repvgg-a0-x0.5': {
    inputShape: [32, 32, 3],
    classes: 10,
    batch: BATCH,
    parallelSteps: 16,
    build: () => buildRepVgg({ variant: 'A0', inputShape: [32, 32, 3], numClasses: 10, widthMultiplier: 0.5, seed: 1 }),
  },
  'mobilenetv2-224': { inputShape: [224, 224, 3], classes: 1000, batch: 4, parallelSteps: 6, build: () => buildMobileNetV2({ inputSize: 224, numClasses: 1000 }) },
};
export interface Workload {
  train: () => void;
  /** The forward and backward pass of `train` without the optimizer's update. */
  gradients: () => void;
  infer: () => void;
  dispose: () => void;
}

/** The engine's training step: model.apply(training) in optimizer.minimize, SGD momentum 0.9. */
export function makeWorkload(net: NetName, batch: number): Workload {
  const model = ALL_NETS[net].build();
  const optimizer = tf.train.momentum(0.01, 0.9);
  const x = tf.randomNormal([batch, ...ALL_NETS[net].inputShape], 0, 1, 'float32', 1);
  const labels = tf.tidy(() => tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32', 2), ALL_NETS[net].classes).toFloat());
  return {
    train: () => {
      const loss = optimizer.minimize(
        () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      );
      loss?.dataSync();
      loss?.dispose();
    },
    gradients: () => {
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      tf.tidy(() => {
        const { value } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, variables);
        value.dataSync();
      });
    },
    infer: () => {
      const y = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor);
      y.dataSync();
      y.dispose();
    },
    dispose: () => {
      tf.dispose([x, labels]);
      model.dispose();
      optimizer.dispose();
    },
  };
}

export function timeSteps(
  step: () => void,
  batch: number,
  seconds: number,
  warmup: number,
  maxSteps = Infinity,
): { imagesPerSecond: number; imagesPerCpuSecond: number; steps: number } {
  for (let i = 0; i < warmup; i++) step();
  let steps = 0;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let elapsed = 0;
  while (steps < maxSteps && (steps < 3 || elapsed < seconds * 1000)) {
    step();
    steps++;
    elapsed = performance.now() - start;
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return { imagesPerSecond: (steps * batch) / (elapsed / 1000), imagesPerCpuSecond: (steps * batch) / cpuSeconds, steps };
}

