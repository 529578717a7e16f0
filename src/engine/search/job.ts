import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import type { BackendName, EpochEvent, Phase, WorkerEvent } from '../../shared/workerProtocol';
import type { GroupWidth, SearchReport } from '../reports';
import { defaultAugmentation, loadDataset, type Dataset } from '../data';
import { deployGraph, EQUIVALENCE_TOLERANCE } from '../deploy';
import { compareLatency } from '../latency';
import { PasInputError } from '../errors';
import { summarizeGraph } from '../graph/counting';
import { graphFromModel, ModelGraph, modelFromGraph } from '../graph/modelGraph';
import { reparameterizeGraph } from '../transform/reparameterize';
import { keptChannelsFromMasks, pruneGraph } from '../transform/prune';
import { loadLayersModelFromFile, saveLayersModelToDir, writeFileAtomic } from '../io';
import { DepthwiseBinaryConv } from '../layers/dbc';
import { classCount, imageInputShape, loadModelSource } from '../model';
import { hasMasks, MaskLayout, insertMasks } from '../transform/masks';
import { MacsBudget, nothingToPruneMessage } from '../budget/macsBudget';
import { cosineLearningRate, evaluate, SGD_MOMENTUM, trainableVariables, trainEpoch, WEIGHT_DECAY } from '../train/trainer';
import { agreement, dataLossFor, fidelity, outputKind, type OutputKind } from '../train/distill';
import { isAllocationFailure, backendSurvived, outOfMemoryError } from '../train/microBatches';
import { batchCount } from '../data';
import { measureTrainingSpeed, microBatchFor } from './sizing';
import { projectOntoBudget, selectionToLatents } from './maskSelection';
import { maskedPhaseLearningRate } from './learningRateSchedule';
import { DEFAULT_LATENT_PRIOR, initialSearchLatents, SEARCH_LATENT_INIT } from './latentInit';
import { BudgetSchedule, FEW_SEARCH_STEPS, LatentStepScaler } from './budgetSchedule';
import { PRUNE_METHODS } from './methods';
import { CONSTRAINTS_OF_RUNS_WITHOUT_THEM, validateWidthConstraints, WidthLattice } from './widthConstraints';
import type { WidthConstraints } from './widthConstraints';
import { ORIGINAL_MODEL_DIR, checkpointPath, readRunState, removeStaleTempEntries, RUN_STATE_VERSION, RunSettings, RunState, writeRunState } from './runState';
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
  /** How the run learns: from labels, from the original model's outputs, or both. */
  learning: Learning;
  /** The original (unpruned, trained) model: the distillation teacher and the fidelity reference; set once the masks go in. */
  teacher?: tf.LayersModel;
  /** The memory estimate behind the micro-batch, for the out-of-memory message. */
  memory?: { bytesPerExample: number; memoryLimitBytes: number };
  /** Training threads sharing each batch (train/parallel); 1 = the plain trainer. */
  workers: number;
}

/** What a run learns from. */
export interface Learning {
  /** Cross-entropy on the data's labels (a labelled data set and a classifier). */
  useLabels: boolean;
  /** Distillation from the original model, with the loss for its output kind; null without. */
  distill: OutputKind | null;
}

/**
 * Validates a new run before anything is written: the model loads, the data loads and fits the
 * model, the target is reachable. Returns the loaded pieces.
 */
export async function prepareRun(settings: RunSettings): Promise<{ model: tf.LayersModel; source: string; file?: string; dataset: Dataset; isBuiltin: boolean; learning: Learning; budget: MacsBudget }> {
  const loaded = await loadModelSource(settings.modelSpec, { ...settings.builtinOptions, seed: settings.seed });
  const inputShape = imageInputShape(loaded.model, loaded.source);
  const kind = loaded.model.outputs.length === 1 ? outputKind(loaded.model) : 'dense';
  if (loaded.model.outputs.length !== 1) classCount(loaded.model, loaded.source); // refuses it, naming the outputs
  const classes = kind === 'classifier' ? classCount(loaded.model, loaded.source) : undefined;
  const dataset = await loadDataset(settings.dataSpec, { inputShape, seed: settings.seed, maxTrain: settings.maxTrain, maxTest: settings.maxTest, classLimit: classes, preprocessing: settings.preprocessing });
  const learning: Learning = { useLabels: dataset.labelled && kind === 'classifier', distill: settings.distill || !dataset.labelled ? kind : null };
  if (!learning.distill && kind !== 'classifier') {
    throw new PasInputError(`the model output has shape [${loaded.model.outputs[0].shape.join(', ')}]: training on class labels needs [batch, classes] logits; pass --distill to learn from the model's own outputs instead`, loaded.source);
  }
  if (learning.useLabels && dataset.numClasses !== classes) {
    // Checked here, before any training: a mismatch would otherwise fail inside the loss (issue 16).
    throw new PasInputError(`the data ${dataset.name} has ${dataset.numClasses} classes but the model's classifier has ${classes} outputs; pass data with ${classes} classes${loaded.isBuiltin ? ', or drop --classes so that the builtin follows the data' : ''}`, settings.dataSpec);
  }
  if (settings.pretrainEpochs > 0 && !learning.useLabels) {
    throw new PasInputError(`pretraining needs class labels and a classifier, and ${dataset.labelled ? 'the model is not a classifier' : 'the data has none (a flat folder of images)'}: pass --pretrain-epochs 0 to prune by distillation from the model as it is`, settings.dataSpec);
  }
  if (settings.batchSize > dataset.train.count) {
    throw new PasInputError(`batch size ${settings.batchSize} is larger than the ${dataset.train.count} training images`, settings.dataSpec);
  }
  const graph = graphFromModel(loaded.model);
  if (hasMasks(graph)) {
    throw new PasInputError('the model already has DBC masks (a searched checkpoint): deploy it with `pas reparam`, or search from the unmasked model', loaded.source);
  }
  // The run's one budget: it depends on the model's structure only, which training does not change.
  const budget = MacsBudget.forUnmaskedGraph(graph);
  if (budget.groups.length === 0) throw new PasInputError(nothingToPruneMessage(budget), loaded.source);
  if (budget.minimumMacs > settings.targetFraction * budget.fullMacs) {
    const floor = budget.minimumMacs / budget.fullMacs;
    throw new PasInputError(
      `a MACs target of ${settings.targetFraction} is unreachable: with one channel left in every prunable layer the model still has ${(100 * floor).toFixed(1)}% of its MACs; use --target-macs above ${floor.toFixed(3)}`,
      loaded.source,
    );
  }
  const constraints = constraintsOf(settings);
  validateWidthConstraints(constraints);
  const lattice = new WidthLattice(budget.groups, constraints);
  const lowest = budget.macsOf(lattice.floors()) / budget.fullMacs;
  if (lowest > settings.targetFraction) {
    throw new PasInputError(
      `a MACs target of ${settings.targetFraction} is unreachable under the width constraints (--min-keep ${constraints.minKeep}, --round-to ${constraints.roundTo}${constraints.keep.length ? `, --keep ${constraints.keep.join(',')}` : ''}): the narrowest model they allow has ${(100 * lowest).toFixed(1)}% of the MACs; use --target-macs of at least ${(Math.ceil(lowest * 1000) / 1000).toFixed(3)} or loosen the constraints`,
      loaded.source,
    );
  }
  return { ...loaded, dataset, learning, budget };
}

/** Runs (or resumes) the whole PaS job: pretrain, search, frozen-mask fine-tune, prune, reparameterize, evaluate. */
export async function runSearchJob(
  args: { settings: RunSettings; outDir: string; resume: boolean; backend: BackendName; notes?: string[]; workers?: number },
  hooks: JobHooks,
): Promise<JobOutcome> {
  const started = Date.now();
  let state: RunState;
  let model: tf.LayersModel;
  let dataset: Dataset;
  let learning: Learning;
  let teacher: tf.LayersModel | undefined;
  let budget: MacsBudget;
  // The caller holds the folder's lock: temp entries here are a killed run's, not a live writer's.
  removeStaleTempEntries(args.outDir);
  if (args.resume) {
    state = readRunState(args.outDir);
    // --micro-batch on --resume: the way on after an out-of-memory exit (it changes no result but BN's batch statistics).
    if (args.settings.microBatch !== undefined && args.settings.microBatch !== state.microBatch) {
      state.settings.microBatch = args.settings.microBatch;
      state.microBatch = args.settings.microBatch;
    }
    let prepared: tf.LayersModel;
    ({ dataset, learning, budget, model: prepared } = await prepareRun(state.settings));
    prepared.dispose();
    model = await loadLayersModelFromFile(path.join(checkpointPath(args.outDir, state.checkpoint), 'model.json'));
    const originalFile = path.join(args.outDir, ORIGINAL_MODEL_DIR, 'model.json');
    if (state.phase !== 'pretrain') {
      if (fs.existsSync(originalFile)) teacher = await loadLayersModelFromFile(originalFile);
      else if (learning.distill) throw new PasInputError('the original model (the distillation teacher) is missing from this run folder; start the run again', path.dirname(originalFile));
    }
    hooks.emit({ type: 'log', message: `resumed from checkpoint ${state.checkpoint} (${state.phase}, ${state.epochsDone} epoch(s) of it done)` });
  } else {
    const prepared = await prepareRun(args.settings);
    dataset = prepared.dataset;
    model = prepared.model;
    learning = prepared.learning;
    budget = prepared.budget;
    // Said once the run is accepted, so that a refused run prints its one error line only.
    for (const message of args.notes ?? []) hooks.emit({ type: 'log', message });
    if (learning.distill && !args.settings.distill) hooks.emit({ type: 'log', message: `the data has no labels: distilling from the original model's outputs (${learning.distill === 'classifier' ? 'KL divergence of the softmax' : 'mean squared error'})` });
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
  const context: RunContext = { outDir: args.outDir, settings: state.settings, dataset, backend: args.backend, hooks, started, wallSecondsBefore: state.wallSecondsBefore, learning, teacher, workers: args.workers ?? 1 };
  const { settings } = state;
  sizeRun(context, state, model);

  // Phase 1: pretraining (builtins start untrained; PaS searches a trained network).
  if (state.phase === 'pretrain') {
    const stopped = await trainPhase(context, state, model, 'pretrain', settings.pretrainEpochs, settings.learningRates.pretrain, null);
    if (stopped) return cancelled(context, state);
    state.accuracyBefore = learning.useLabels ? evaluate(model, dataset.test).accuracy : agreement(model, model, dataset.test);
    const masked = await enterMaskedPhase(context, state, model, budget);
    // The trained, unpruned model: what distillation learns from and what the result is compared with.
    await saveLayersModelToDir(model, path.join(context.outDir, ORIGINAL_MODEL_DIR), { overwrite: true });
    context.teacher = model;
    model = masked;
    await checkpoint(context, state, model);
  }
  const graph = graphFromModel(model);
  const targetMacs = settings.targetFraction * budget.fullMacs;
  const lattice = new WidthLattice(budget.groups, constraintsOf(settings));
  hooks.emit({ type: 'model', groups: groupWidths(budget, budget.keptCounts(model), lattice), macsOriginal: budget.fullMacs, macsTarget: targetMacs, paramsOriginal: deployedParamsUnpruned(graph) });
  // A resumed run replays the epochs it already has, so a fresh viewer (the extension's panel)
  // shows the whole run, not only what follows the checkpoint.
  if (args.resume) for (const event of state.history) if (event.phase !== 'pretrain') hooks.emit(event);

  // Phase 2: the search (PaS only): masks and weights trained together under the MACs budget loss.
  if (state.phase === 'search') {
    const stopped = await trainPhase(context, state, model, 'search', settings.searchEpochs, settings.learningRates.search, { budget, targetMacs, lattice });
    if (stopped) return cancelled(context, state);
    state.searchEndMacsFraction = budget.macsOf(atFloors(budget.keptCounts(model), lattice)) / budget.fullMacs;
    const latents = new Map(budget.groups.map((g) => [g.id, Float32Array.from(model.getLayer(g.layerName).getWeights()[0].dataSync())]));
    const { selection, moved } = projectOntoBudget(latents, budget, targetMacs, lattice);
    setMaskLatents(model, budget.layout, selectionToLatents(selection, budget.fullWidths));
    state.projectionMoved = moved;
    state.phase = 'finetune';
    state.epochsDone = 0;
    await checkpoint(context, state, model);
  }

  // Phase 3: fine-tuning with the masks frozen.
  if (state.phase === 'finetune') {
    const stopped = await trainPhase(context, state, model, 'finetune', settings.finetuneEpochs, settings.learningRates.finetune, { budget, targetMacs, lattice, frozen: true });
    if (stopped) return cancelled(context, state);
  }

  // Phase 4: prune, reparameterize, evaluate, write the outputs.
  const report = await finish(context, state, model, budget, targetMacs, lattice);
  model.dispose();
  context.teacher?.dispose();
  return { status: 'done', report, outDir: args.outDir };
}

/** Inserts the DBC masks: all kept for PaS (the search decides), the baseline's choice otherwise. */
async function enterMaskedPhase(context: RunContext, state: RunState, trained: tf.LayersModel, budget: MacsBudget): Promise<tf.LayersModel> {
  const { settings } = context;
  const plain = graphFromModel(trained);
  const searching = PRUNE_METHODS[settings.method].kind === 'search';
  const { graph, layout } = insertMasks(plain, searching ? { initialValue: SEARCH_LATENT_INIT, latents: initialSearchLatents(plain, settings.latentPrior ?? DEFAULT_LATENT_PRIOR) } : { initialValue: 1.0 });
  const method = PRUNE_METHODS[settings.method];
  if (method.kind === 'select') {
    const target = settings.targetFraction * budget.fullMacs;
    const lattice = new WidthLattice(budget.groups, constraintsOf(settings));
    const latents = selectionToLatents(method.select!(graph, budget, target, lattice), budget.fullWidths);
    for (const [group, values] of latents) graph.weights.get(layout.layerOfGroup.get(group)!)!.latent.values = values;
  }
  state.phase = method.kind === 'search' && settings.searchEpochs > 0 ? 'search' : 'finetune';
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

/** Masks train during the search, except those of groups held at full width. */
function setMasksTrainable(model: tf.LayersModel, budget: MacsBudget, lattice: WidthLattice, trainable: boolean): void {
  for (const layer of model.layers) if (layer instanceof DepthwiseBinaryConv) layer.trainable = trainable;
  for (const group of budget.groups) if (lattice.isFixed(group.id)) model.getLayer(group.layerName).trainable = false;
}

/** The run's width constraints (runs from before constraints existed get the defaults of that time). */
export function constraintsOf(settings: RunSettings): WidthConstraints {
  return settings.constraints ?? CONSTRAINTS_OF_RUNS_WITHOUT_THEM;
}

/** The searched latents: the variables the schedule's latent step factor and clipping act on. */
function latentVariables(model: tf.LayersModel, budget: MacsBudget): tf.LayerVariable[] {
  return budget.groups.map((group) => model.getLayer(group.layerName).weights[0]);
}

/** Kept counts with every group raised to its floor: what the budget loss counts. */
function atFloors(counts: Map<string, number>, lattice: WidthLattice): Map<string, number> {
  return new Map([...counts].map(([id, k]) => [id, Math.max(k, lattice.floor(id))]));
}

function groupWidths(budget: MacsBudget, counts: Map<string, number>, lattice: WidthLattice): GroupWidth[] {
  return budget.groups.map((g) => ({
    name: g.name,
    originalWidth: g.width,
    searchedWidth: counts.get(g.id) ?? g.width,
    minWidth: lattice.floor(g.id),
    ...(lattice.isFixed(g.id) ? { fixed: true } : { roundingStep: lattice.step(g.id) }),
  }));
}

/** Trains `epochs - state.epochsDone` more epochs of a phase, checkpointing after each. Returns true when stopped. */
async function trainPhase(
  context: RunContext,
  state: RunState,
  model: tf.LayersModel,
  phase: Phase & RunState['phase'],
  epochs: number,
  baseLearningRate: number,
  masks: { budget: MacsBudget; targetMacs: number; lattice: WidthLattice; frozen?: boolean } | null,
): Promise<boolean> {
  const { settings, dataset, hooks, learning } = context;
  if (masks) setMasksTrainable(model, masks.budget, masks.lattice, !masks.frozen);
  const searching = masks !== null && !masks.frozen;
  const floors = masks ? masks.lattice.floors() : undefined;
  const schedule = searching
    ? new BudgetSchedule(epochs * batchCount(dataset.train, settings.batchSize), settings.targetFraction, state.budgetSchedule)
    : undefined;
  const budgetLoss = () => {
    const target = schedule!.scheduledFraction() * masks!.budget.fullMacs;
    return masks!.budget.loss(model, target, settings.alpha * schedule!.budgetWeight(), floors);
  };
  hooks.emit({ type: 'phase', phase, epochs });
  if (schedule && schedule.totalSteps < FEW_SEARCH_STEPS) {
    hooks.emit({ type: 'log', message: `the search has ${schedule.totalSteps} optimizer step(s): too few for the budget loss to bring the masks onto the target (about ${FEW_SEARCH_STEPS} or more are needed), so the projection after it will do most of the pruning; more images, a smaller --batch-size or more --search-epochs give the search more steps` });
  }
  const augment = defaultAugmentation(dataset);
  for (let epoch = state.epochsDone; epoch < epochs; epoch++) {
    let lastEmit = 0;
    const learningRate = phase === 'pretrain' ? cosineLearningRate(baseLearningRate, epoch, epochs) : maskedPhaseLearningRate(settings, phase, epoch, baseLearningRate);
    const currentMacs = () => (masks ? masks.budget.macsOf(masks.budget.keptCounts(model)) : 0);
    const latentSteps = schedule ? new LatentStepScaler(latentVariables(model, masks!.budget)) : undefined;
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
      extraLoss: searching ? budgetLoss : undefined,
      shouldStop: hooks.shouldStop,
      microBatch: state.microBatch,
      maxSteps: settings.maxSteps,
      // Pretraining learns from labels only; the masked phases distill from the original model when asked.
      // (Plain cross-entropy on labels is the trainer's default, which the data-parallel replicas also compute.)
      dataLoss: (masks && learning.distill) || !learning.useLabels ? dataLossFor({ labels: learning.useLabels, distill: masks ? learning.distill : null }) : undefined,
      teacher: masks && learning.distill ? context.teacher : undefined,
      labelled: learning.useLabels,
      onMicroBatchShrunk: (size, error) => {
        hooks.emit({ type: 'log', message: `out of memory at a micro-batch of ${state.microBatch}; retrying the step with ${size} (${describeError(error)})` });
        state.microBatch = size;
        return true;
      },
      outOfMemory: (size, error) =>
        outOfMemoryError({
          microBatch: size,
          bytesPerExample: context.memory?.bytesPerExample ?? NaN,
          memoryLimitBytes: context.memory?.memoryLimitBytes ?? NaN,
          backend: context.backend,
          cause: error,
          hint: state.checkpoint
            ? `continue from the last checkpoint with a smaller micro-batch: pas search --resume ${context.outDir} --micro-batch ${Math.max(1, Math.floor(size / 2))}`
            : undefined,
        }),
      workers: context.workers,
      onBatch: (p) => {
        if (schedule) {
          latentSteps!.settle(schedule.latentStepScale(), schedule.switchMargin());
          const fraction = masks!.budget.macsOf(atFloors(masks!.budget.keptCounts(model), masks!.lattice)) / masks!.budget.fullMacs;
          if (process.env.PAS_DEBUG_BUDGET) process.stderr.write(`budget ${p.batch} scheduled ${schedule.scheduledFraction().toFixed(3)} macs ${fraction.toFixed(3)} gain ${schedule.gain.toFixed(2)} latent-step ${schedule.latentStepScale().toFixed(3)}\n`);
          schedule.observe(fraction);
        }
        const now = Date.now();
        if (now - lastEmit < BATCH_EVENT_INTERVAL_MS && p.batch < p.batches) return;
        lastEmit = now;
        const remainingEpochs = epochs - epoch - 1;
        const etaSeconds = ((p.batches - p.batch) + remainingEpochs * p.batches) * (settings.batchSize / p.imagesPerSecond);
        hooks.emit({ type: 'batch', phase, epoch: epoch + 1, batch: p.batch, batches: p.batches, loss: p.loss, accuracy: p.accuracy, macs: currentMacs(), etaSeconds, imagesPerSecond: p.imagesPerSecond });
      },
    });
    latentSteps?.dispose();
    if (result.stopped) return true;
    const validation = validationScore(context, model);
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
      params: deployedParamsNow(model),
      widths: masks ? masks.budget.groups.map((g) => counts.get(g.id)!) : [],
      tensors: tf.memory().numTensors,
      rssBytes: residentBytes(),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      imagesPerSecond: result.imagesPerSecond,
      microBatch: result.microBatch,
    };
    state.history.push(event);
    state.epochsDone = epoch + 1;
    if (schedule) state.budgetSchedule = schedule.snapshot();
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

async function finish(context: RunContext, state: RunState, model: tf.LayersModel, budget: MacsBudget, targetMacs: number, lattice: WidthLattice): Promise<SearchReport> {
  const { settings, dataset, hooks, outDir } = context;
  hooks.emit({ type: 'phase', phase: 'prune', epochs: 0 });
  const { learning, teacher } = context;
  const score = (candidate: tf.LayersModel) => (learning.useLabels || !teacher ? evaluate(candidate, dataset.test).accuracy : agreement(teacher, candidate, dataset.test));
  const accuracyMasked = score(model);
  const graph = graphFromModel(model);
  const inputShape = imageInputShape(model, settings.modelSpec);
  const deployment = await deployGraph(graph, model, inputShape);
  if (!(deployment.maxAbsDiff <= EQUIVALENCE_TOLERANCE)) {
    throw new Error(`the deployed model differs from the fine-tuned masked model by ${deployment.maxAbsDiff}`);
  }
  hooks.emit({ type: 'phase', phase: 'evaluate', epochs: 0 });
  const accuracyAfter = score(deployment.deployed);
  const fidelityOfDeployed = teacher ? fidelity(teacher, deployment.deployed, dataset.test) : undefined;
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
    epochs: { pretrain: settings.pretrainEpochs, search: PRUNE_METHODS[settings.method].kind === 'search' ? settings.searchEpochs : 0, finetune: settings.finetuneEpochs },
    wallSeconds: context.wallSecondsBefore + (Date.now() - context.started) / 1000,
    deployedModel: mainDeployedFile(deployedPaths),
    searchedCheckpoint: path.join(searchedDir, 'model.json'),
    layers: groupWidths(budget, counts, lattice),
    fidelity: fidelityOfDeployed && { metric: fidelityOfDeployed.metric, value: Number.isFinite(fidelityOfDeployed.value) ? fidelityOfDeployed.value : null },
    distilled: learning.distill !== null,
    labelled: dataset.labelled,
    batchSize: settings.batchSize,
    microBatch: state.microBatch,
    preprocessing: dataset.preprocessing,
    ...(state.searchEndMacsFraction !== undefined ? { searchEndMacsFraction: state.searchEndMacsFraction } : {}),
    projectionMoved: state.projectionMoved ?? 0,
    constraints: { ...constraintsOf(settings), keep: [...constraintsOf(settings).keep] },
    ...(await deployedLatency(graph, deployment.deployed)),
  };
  deployment.deployed.dispose();
  await writeFileAtomic(path.join(outDir, 'report.json'), JSON.stringify({ ...report, history: state.history, settings }, null, 2));
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
/**
 * Params of the model the current masks would deploy: pruned to the kept channels and
 * reparameterized (an unmasked model, while pretraining, deploys unpruned).
 */
function deployedParamsNow(model: tf.LayersModel): number {
  const graph = graphFromModel(model);
  const pruned = hasMasks(graph) ? pruneGraph(graph, keptChannelsFromMasks(graph)) : graph;
  return summarizeGraph(reparameterizeGraph(pruned)).totalParams;
}

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

/** Validation "accuracy" of an epoch: against the labels, or top-1 agreement with the original model without them. */
function validationScore(context: RunContext, model: tf.LayersModel): { accuracy: number } {
  if (context.learning.useLabels || !context.teacher) return evaluate(model, context.dataset.validation);
  return { accuracy: agreement(context.teacher, model, context.dataset.validation) };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0] : String(error);
}

/**
 * Chooses the micro-batch (unless the run has one) and measures a few warm-up steps: an
 * allocation failure there is retried with half the micro-batch, like one in training. Emits the
 * `estimate` event with the run time the measured speed implies.
 */
function sizeRun(context: RunContext, state: RunState, model: tf.LayersModel): void {
  const { settings, dataset, learning } = context;
  const estimate = microBatchFor(model, settings.batchSize, context.backend, learning.distill !== null);
  context.memory = estimate;
  state.microBatch ??= settings.microBatch ?? estimate.microBatch;
  const masked = state.phase !== 'pretrain';
  let imagesPerSecond: number;
  for (;;) {
    try {
      imagesPerSecond = measureTrainingSpeed(model, dataset.train, {
        batchSize: settings.batchSize,
        microBatch: state.microBatch,
        // Without labels there is no pretraining (prepareRun refuses it): the first phase is the distilled search.
        dataLoss: dataLossFor({ labels: learning.useLabels, distill: masked || !learning.useLabels ? learning.distill : null }),
        // Before the masks go in the model is its own teacher: the same cost as the real one.
        teacherOutput: learning.distill ? (x) => ((context.teacher ?? model).predict(x) as tf.Tensor) : undefined,
      });
      break;
    } catch (error) {
      if (!isAllocationFailure(error)) throw error;
      if (state.microBatch <= 1 || !backendSurvived(model)) {
        throw outOfMemoryError({ microBatch: state.microBatch, bytesPerExample: estimate.bytesPerExample, memoryLimitBytes: estimate.memoryLimitBytes, backend: context.backend, cause: error });
      }
      state.microBatch = Math.floor(state.microBatch / 2);
    }
  }
  const phases: Array<[RunState['phase'], number]> = [
    ['pretrain', settings.pretrainEpochs],
    ['search', settings.method === 'pas' ? settings.searchEpochs : 0],
    ['finetune', settings.finetuneEpochs],
  ];
  const current = phases.findIndex(([phase]) => phase === state.phase);
  const epochs = current < 0 ? 0 : phases.slice(current).reduce((sum, [, n], i) => sum + n - (i === 0 ? state.epochsDone : 0), 0);
  const stepsPerEpoch = Math.min(batchCount(dataset.train, settings.batchSize), settings.maxSteps ?? Infinity);
  const trainImages = Math.min(dataset.train.count, stepsPerEpoch * settings.batchSize);
  // Evaluation runs forward only, about three times the training rate: a validation pass per epoch, three test passes at the end.
  const evaluationImages = epochs * dataset.validation.count + 3 * dataset.test.count;
  const seconds = (epochs * trainImages) / imagesPerSecond + evaluationImages / (3 * imagesPerSecond);
  context.hooks.emit({ type: 'estimate', backend: context.backend, imagesPerSecond, trainImages, epochs, stepsPerEpoch, batchSize: settings.batchSize, microBatch: state.microBatch, seconds });
}

/** Batch-1 latency of the unpruned model's deployed form and of the pruned deployed model (same backend). */
async function deployedLatency(maskedGraph: ModelGraph, prunedDeployed: tf.LayersModel): Promise<ReturnType<typeof compareLatency>> {
  const unpruned = await modelFromGraph(reparameterizeGraph(unmaskedGraph(maskedGraph)));
  try {
    return compareLatency(unpruned, prunedDeployed, 10);
  } finally {
    unpruned.dispose();
  }
}

/**
 * The process's resident memory. Where node runs with --expose-gc (the long-run memory test does),
 * garbage is collected first, so that the figure is what the process keeps: otherwise V8's lazy
 * collection alone moves it by tens of MiB over a long run (measured: +57 MiB over 100 epochs of
 * a one-thread search, none of it live), which would hide a real leak of a model per epoch.
 */
function residentBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}
