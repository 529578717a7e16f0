import * as tf from '@tensorflow/tfjs';
import type { ModelFormSummary } from './reports';
import { summarizeGraph } from './graph/counting';
import { graphFromModel, ModelGraph, modelFromGraph } from './graph/modelGraph';
import { maxOutputDifference } from './equivalence';
import { hasMasks } from './transform/masks';
import { keptChannelsFromMasks, pruneGraph } from './transform/prune';
import { reparameterizeWithReport, UnfusedBlock } from './transform/reparameterize';

/** Largest output difference accepted between a model and its deployed form. */
export const EQUIVALENCE_TOLERANCE = 1e-4;

export interface Deployment {
  deployed: tf.LayersModel;
  deployedGraph: ModelGraph;
  trainingSummary: ModelFormSummary;
  deployedSummary: ModelFormSummary;
  /** Max |training(x) - deployed(x)| on a random batch (inference mode). */
  maxAbsDiff: number;
  /** Multi-branch blocks left unfused because a fusion would not be exact. */
  unfusedBlocks: UnfusedBlock[];
}

/**
 * The deployed form of a training-time model: a masked model (with DBC layers) is first pruned
 * to its kept channels, then every multi-branch block is fused and every BN folded. The result
 * is checked against the input model on random data.
 */
export async function deployGraph(graph: ModelGraph, reference: tf.LayersModel, inputShape: number[]): Promise<Deployment> {
  const pruned = hasMasks(graph) ? pruneGraph(graph, keptChannelsFromMasks(graph)) : graph;
  const { graph: deployedGraph, unfused } = reparameterizeWithReport(pruned);
  const deployed = await modelFromGraph(deployedGraph);
  return {
    deployed,
    deployedGraph,
    trainingSummary: summarizeGraph(graph),
    deployedSummary: summarizeGraph(deployedGraph),
    maxAbsDiff: maxOutputDifference(reference, deployed, inputShape),
    unfusedBlocks: unfused,
  };
}

export async function deployModel(model: tf.LayersModel, inputShape: number[]): Promise<Deployment> {
  return deployGraph(graphFromModel(model), model, inputShape);
}
