import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import type { BackendName, EpochEvent, GroupWidth, Phase, SearchReport, WorkerEvent } from '../../shared/workerProtocol';
import { defaultAugmentation, loadDataset, type Dataset } from '../data';
import { deployGraph, EQUIVALENCE_TOLERANCE } from '../deploy';
import { PasInputError } from '../errors';
import { summarizeGraph } from '../graph/counting';
import { graphFromModel, ModelGraph, modelFromGraph } from '../graph/modelGraph';
import { reparameterizeGraph } from '../transform/reparameterize';
import { loadLayersModelFromFile, saveLayersModelToDir, writeFileAtomic } from '../io';
import { DepthwiseBinaryConv } from '../layers/dbc';
import { classCount, imageInputShape, loadModelSource } from '../model';
import { hasMasks, MaskLayout, insertMasks, maskLayoutOf } from '../transform/masks';
import { MacsBudget } from '../train/macsBudget';
import { cosineLearningRate, evaluate, SGD_MOMENTUM, trainableVariables, trainEpoch, WEIGHT_DECAY } from '../train/trainer';
import { magnitudeSelection, projectOntoBudget, selectionToLatents, uniformSelection } from './maskSelection';
import { checkpointPath, readRunState, removeStaleTempEntries, RUN_STATE_VERSION, RunSettings, RunState, writeRunState } from './runState';
import { describeFsError } from '../io/fsErrors';
import { defaultDeployedFormat, isOnnxPath, mainDeployedFile, readOnnxModel, saveDeployedModel } from '../onnx';

export interface JobHooks {
  emit(event: WorkerEvent): void;
  /** True once the user asked to stop (Ctrl-C, Cancel): the job stops after the current batch. */
  shouldStop(): boolean;
}

export type JobOutcome = { status: 'done'; report: SearchReport; outDir: string } | { status: 'cancelled'; outDir: string; checkpoint?: string };

/** Emits batch events at most this often; epoch events always. */
const BATCH_EVENT_INTERVAL_MS = 250;

/** Where a run writes, and what it found when it started. */
interface RunContext {
  outDir: string;
  settings: RunSettings;
  dataset: Dataset;
  backend: BackendName;
  hooks: JobHooks;
  started: number;
  /** Wall time of earlier sessions of a resumed run. */
  wallSecondsBefore: number;
}

/**
 * Validates a new run before anything is written: the model loads, the data loads and fits the
 * model, the target is reachable. Returns the loaded pieces.
 */
export async function prepareRun(settings: RunSettings): Promise<{ model: tf.LayersModel; source: string; file?: string; dataset: Dataset; isBuiltin: boolean }> {
  const loaded = await loadModelSource(settings.modelSpec, { ...settings.builtinOptions, seed: settings.seed });
  const inputShape = imageInputShape(loaded.model, loaded.source);
  const classes = classCount(loaded.model, loaded.source);
  const dataset = await loadDataset(settings.dataSpec, { inputShape, seed: settings.seed, maxTrain: settings.maxTrain, maxTest: settings.maxTest, classLimit: classes });
  if (dataset.numClasses > classes) {
    throw new PasInputError(`the data has ${dataset.numClasses} classes but the model's classifier has ${classes} outputs`, settings.dataSpec);
  }
  if (settings.batchSize > dataset.train.count) {
    throw new PasInputError(`batch size ${settings.batchSize} is larger than the ${dataset.train.count} training images`, settings.dataSpec);
  }
  const graph = graphFromModel(loaded.model);
  if (hasMasks(graph)) {
    throw new PasInputError('the model already has DBC masks (a searched checkpoint): deploy it with `pas reparam`, or search from the unmasked model', loaded.source);
  }
  const budget = new MacsBudget(...(Object.values(insertMasks(graph)) as [ModelGraph, MaskLayout]));
  if (budget.groups.length === 0) {
    throw new PasInputError('the model has no prunable layers (no conv or dense layer whose channels can be removed)', loaded.source);
  }
  if (budget.minimumMacs > settings.targetFraction * budget.fullMacs) {
    const floor = budget.minimumMacs / budget.fullMacs;
    throw new PasInputError(
      `a MACs target of ${settings.targetFraction} is unreachable: with one channel left in every prunable layer the model still has ${(100 * floor).toFixed(1)}% of its MACs; use --target-macs above ${floor.toFixed(3)}`,
      loaded.source,
    );
  }
  return { ...loaded, dataset };
}

/** Runs (or resumes) the whole PaS job: pretrain, search, frozen-mask fine-tune, prune, reparameterize, evaluate. */
export async function runSearchJob(
  args: { settings: RunSettings; outDir: string; resume: boolean; backend: BackendName },
  hooks: JobHooks,
): Promise<JobOutcome> {
  const started = Date.now();
  let state: RunState;
  let model: tf.LayersModel;
  let dataset: Dataset;
  // The caller holds the folder's lock: temp entries here are a killed run's, not a live writer's.
  removeStaleTempEntries(args.outDir);
  if (args.resume) {
    state = readRunState(args.outDir);
    ({ dataset } = await prepareRun(state.settings));
    model = await loadLayersModelFromFile(path.join(checkpointPath(args.outDir, state.checkpoint), 'model.json'));
  } else {
    const prepared = await prepareRun(args.settings);
    dataset = prepared.dataset;
    model = prepared.model;
    fs.mkdirSync(path.join(args.outDir), { recursive: true });
    state = {
      version: RUN_STATE_VERSION,
      settings: args.settings,
      phase: 'pretrain',
      epochsDone: 0,
      checkpoint: '',
      history: [],
      wallSecondsBefore: 0,
    };
  }
  const context: RunContext = { outDir: args.outDir, settings: state.settings, dataset, backend: args.backend, hooks, started, wallSecondsBefore: state.wallSecondsBefore };
  const { settings } = state;

  // Phase 1: pretraining (builtins start untrained; PaS searches a trained network).
  if (state.phase === 'pretrain') {
    const stopped = await trainPhase(context, state, model, 'pretrain', settings.pretrainEpochs, settings.learningRates.pretrain, null);
    if (stopped) return cancelled(context, state);
    state.accuracyBefore = evaluate(model, dataset.test).accuracy;
    const masked = await enterMaskedPhase(context, state, model);
    model.dispose();
    model = masked;
    await checkpoint(context, state, model);
  }
  const graph = graphFromModel(model);
  const budget = new MacsBudget(graph, maskLayoutOf(graph));
  const targetMacs = settings.targetFraction * budget.fullMacs;
  hooks.emit({ type: 'model', groups: groupWidths(budget, budget.keptCounts(model)), macsOriginal: budget.fullMacs, macsTarget: targetMacs, paramsOriginal: deployedParamsUnpruned(graph) });
  // A resumed run replays the epochs it already has, so a fresh viewer (the extension's panel)
  // shows the whole run, not only what follows the checkpoint.
  if (args.resume) for (const event of state.history) if (event.phase !== 'pretrain') hooks.emit(event);

  // Phase 2: the search (PaS only): masks and weights trained together under the MACs budget loss.
  if (state.phase === 'search') {
    const stopped = await trainPhase(context, state, model, 'search', settings.searchEpochs, settings.learningRates.search, { budget, targetMacs });
    if (stopped) return cancelled(context, state);
    const latents = new Map(budget.groups.map((g) => [g.id, Float32Array.from(model.getLayer(g.layerName).getWeights()[0].dataSync())]));
    const { selection, moved } = projectOntoBudget(latents, budget, targetMacs);
    setMaskLatents(model, budget.layout, selectionToLatents(selection, budget.fullWidths));
    state.projectionMoved = moved;
    state.phase = 'finetune';
    state.epochsDone = 0;
    await checkpoint(context, state, model);
  }

  // Phase 3: fine-tuning with the masks frozen.
  if (state.phase === 'finetune') {
    const stopped = await trainPhase(context, state, model, 'finetune', settings.finetuneEpochs, settings.learningRates.finetune, { budget, targetMacs, frozen: true });
    if (stopped) return cancelled(context, state);
  }

  // Phase 4: prune, reparameterize, evaluate, write the outputs.
  const report = await finish(context, state, model, budget, targetMacs);
  model.dispose();
  return { status: 'done', report, outDir: args.outDir };
}

/** Inserts the DBC masks: all ones for PaS (the search decides), the baseline's choice otherwise. */
async function enterMaskedPhase(context: RunContext, state: RunState, trained: tf.LayersModel): Promise<tf.LayersModel> {
  const { settings } = context;
  const plain = graphFromModel(trained);
  const { graph, layout } = insertMasks(plain, { initialValue: 1.0 });
  if (settings.method !== 'pas') {
    const budget = new MacsBudget(graph, layout);
    const target = settings.targetFraction * budget.fullMacs;
    const choose = settings.method === 'uniform' ? uniformSelection : magnitudeSelection;
    const latents = selectionToLatents(choose(graph, budget, target), budget.fullWidths);
    for (const [group, values] of latents) graph.weights.get(layout.layerOfGroup.get(group)!)!.latent.values = values;
  }
  state.phase = settings.method === 'pas' && settings.searchEpochs > 0 ? 'search' : 'finetune';
  state.epochsDone = 0;
  return modelFromGraph(graph);
}

function setMaskLatents(model: tf.LayersModel, layout: MaskLayout, latents: Map<string, Float32Array>): void {
  for (const [group, values] of latents) {
    const layer = model.getLayer(layout.layerOfGroup.get(group)!);
    const tensor = tf.tensor1d(values);
    layer.setWeights([tensor]);
    tensor.dispose();
  }
}

function setMasksTrainable(model: tf.LayersModel, trainable: boolean): void {
  for (const layer of model.layers) if (layer instanceof DepthwiseBinaryConv) layer.trainable = trainable;
}

function groupWidths(budget: MacsBudget, counts: Map<string, number>): GroupWidth[] {
  return budget.groups.map((g) => ({ name: g.name, originalWidth: g.width, searchedWidth: counts.get(g.id) ?? g.width }));
}

/** Trains `epochs - state.epochsDone` more epochs of a phase, checkpointing after each. Returns true when stopped. */
async function trainPhase(
  context: RunContext,
  state: RunState,
  model: tf.LayersModel,
  phase: Phase & RunState['phase'],
  epochs: number,
  baseLearningRate: number,
  masks: { budget: MacsBudget; targetMacs: number; frozen?: boolean } | null,
): Promise<boolean> {
  const { settings, dataset, hooks } = context;
  if (masks) setMasksTrainable(model, !masks.frozen);
  hooks.emit({ type: 'phase', phase, epochs });
  const augment = defaultAugmentation(dataset);
  for (let epoch = state.epochsDone; epoch < epochs; epoch++) {
    let lastEmit = 0;
    const learningRate = phase === 'search' ? baseLearningRate : cosineLearningRate(baseLearningRate, epoch, epochs);
    const currentMacs = () => (masks ? masks.budget.macsOf(masks.budget.keptCounts(model)) : 0);
    const result = await trainEpoch(model, dataset.train, {
      batchSize: settings.batchSize,
      learningRate,
      momentum: SGD_MOMENTUM,
      weightDecay: WEIGHT_DECAY,
      // Different seeds per phase, so that the search does not replay the pretraining order.
      seed: settings.seed * 7919 + ['pretrain', 'search', 'finetune'].indexOf(phase) * 104729,
      epoch,
      augment,
      variables: trainableVariables(model),
      extraLoss: masks && !masks.frozen ? () => masks.budget.loss(model, masks.targetMacs, settings.alpha) : undefined,
      shouldStop: hooks.shouldStop,
      onBatch: (p) => {
        const now = Date.now();
        if (now - lastEmit < BATCH_EVENT_INTERVAL_MS && p.batch < p.batches) return;
        lastEmit = now;
        const remainingEpochs = epochs - epoch - 1;
        const etaSeconds = ((p.batches - p.batch) + remainingEpochs * p.batches) * (settings.batchSize / p.imagesPerSecond);
        hooks.emit({ type: 'batch', phase, epoch: epoch + 1, batch: p.batch, batches: p.batches, loss: p.loss, accuracy: p.accuracy, macs: currentMacs(), etaSeconds });
      },
    });
    if (result.stopped) return true;
    const validation = evaluate(model, dataset.validation);
    const counts = masks ? masks.budget.keptCounts(model) : new Map<string, number>();
    const event: EpochEvent = {
      type: 'epoch',
      phase,
      epoch: epoch + 1,
      epochs,
      loss: result.loss,
      accuracy: result.accuracy,
      valAccuracy: validation.accuracy,
      macs: masks ? masks.budget.macsOf(counts) : 0,
      params: 0,
      widths: masks ? masks.budget.groups.map((g) => counts.get(g.id)!) : [],
      tensors: tf.memory().numTensors,
      rssBytes: process.memoryUsage().rss,
    };
    state.history.push(event);
    state.epochsDone = epoch + 1;
    hooks.emit(event);
    await checkpoint(context, state, model);
    if (hooks.shouldStop()) return true;
  }
  return false;
}

async function checkpoint(context: RunContext, state: RunState, model: tf.LayersModel): Promise<void> {
  const name = `${state.phase}-${String(state.epochsDone).padStart(3, '0')}`;
  const dir = checkpointPath(context.outDir, name);
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
  } catch (error) {
    throw new PasInputError(`cannot create the checkpoints folder: ${describeFsError(error)}`, path.dirname(dir));
  }
  await saveLayersModelToDir(model, dir, { overwrite: true });
  state.checkpoint = name;
  state.wallSecondsBefore = context.wallSecondsBefore + (Date.now() - context.started) / 1000;
  await writeRunState(context.outDir, state);
  context.hooks.emit({ type: 'checkpoint', path: dir, phase: state.phase === 'done' ? 'evaluate' : state.phase, epoch: state.epochsDone });
}

async function cancelled(context: RunContext, state: RunState): Promise<JobOutcome> {
  return { status: 'cancelled', outDir: context.outDir, checkpoint: state.checkpoint ? checkpointPath(context.outDir, state.checkpoint) : undefined };
}

async function finish(context: RunContext, state: RunState, model: tf.LayersModel, budget: MacsBudget, targetMacs: number): Promise<SearchReport> {
  const { settings, dataset, hooks, outDir } = context;
  hooks.emit({ type: 'phase', phase: 'prune', epochs: 0 });
  const accuracyMasked = evaluate(model, dataset.test).accuracy;
  const graph = graphFromModel(model);
  const inputShape = imageInputShape(model, settings.modelSpec);
  const deployment = await deployGraph(graph, model, inputShape);
  if (!(deployment.maxAbsDiff <= EQUIVALENCE_TOLERANCE)) {
    throw new Error(`the deployed model differs from the fine-tuned masked model by ${deployment.maxAbsDiff}`);
  }
  hooks.emit({ type: 'phase', phase: 'evaluate', epochs: 0 });
  const accuracyAfter = evaluate(deployment.deployed, dataset.test).accuracy;
  const counts = budget.keptCounts(model);
  const searchedDir = path.join(outDir, 'searched');
  const deployedDir = path.join(outDir, 'deployed');
  await saveLayersModelToDir(model, searchedDir, { overwrite: true });
  const format = settings.deployedFormat ?? defaultDeployedFormat(settings.modelSpec);
  const deployedPaths = await saveDeployedModel(deployment.deployed, deployedDir, format, { overwrite: true, source: onnxInterfaceOf(settings.modelSpec) });
  const report: SearchReport = {
    method: settings.method,
    modelPath: settings.modelSpec,
    dataSpec: settings.dataSpec,
    backend: context.backend,
    seed: settings.seed,
    targetFraction: settings.targetFraction,
    targetMacs,
    macsBefore: budget.fullMacs,
    macsAfter: deployment.deployedSummary.totalMacs,
    paramsBefore: deployedParamsUnpruned(graph),
    paramsAfter: deployment.deployedSummary.totalParams,
    accuracyBefore: state.accuracyBefore ?? NaN,
    accuracyAfter,
    accuracyMasked,
    reparamMaxAbsDiff: deployment.maxAbsDiff,
    epochs: { pretrain: settings.pretrainEpochs, search: settings.method === 'pas' ? settings.searchEpochs : 0, finetune: settings.finetuneEpochs },
    wallSeconds: context.wallSecondsBefore + (Date.now() - context.started) / 1000,
    deployedModel: mainDeployedFile(deployedPaths),
    searchedCheckpoint: path.join(searchedDir, 'model.json'),
    layers: groupWidths(budget, counts),
  };
  deployment.deployed.dispose();
  await writeFileAtomic(path.join(outDir, 'report.json'), JSON.stringify({ ...report, history: state.history, projectionMoved: state.projectionMoved ?? 0, settings }, null, 2));
  state.phase = 'done';
  await writeRunState(outDir, state);
  return report;
}

/**
 * The input/output names of an ONNX original, which its deployed ONNX keeps. Undefined (default
 * names) when the original was removed or changed during the run: the search's result is not lost.
 */
function onnxInterfaceOf(modelSpec: string) {
  if (!isOnnxPath(modelSpec)) return undefined;
  let model;
  try {
    model = readOnnxModel(modelSpec);
  } catch {
    return undefined;
  }
  const [input] = model.inputs;
  const [output] = model.outputs;
  return { file: modelSpec, inputName: input.name, outputName: output.name, inputBatchDim: input.shape?.[0] ?? 'batch', outputBatchDim: output.shape?.[0] ?? 'batch', opset: model.opset, producer: model.producer };
}

/** Parameters of the unpruned network's deployed form. */
function deployedParamsUnpruned(graph: ModelGraph): number {
  return summarizeGraph(reparameterizeGraph(unmaskedGraph(graph))).totalParams;
}

/** The masked graph with every mask set to keep all channels. */
function unmaskedGraph(graph: ModelGraph): ModelGraph {
  const copy = { ...graph, weights: new Map(graph.weights) };
  for (const node of graph.nodes) {
    if (node.className !== DepthwiseBinaryConv.className) continue;
    const latent = graph.weights.get(node.layerName)!.latent;
    copy.weights.set(node.layerName, { latent: { shape: latent.shape, values: new Float32Array(latent.values.length).fill(1) } });
  }
  return copy;
}
