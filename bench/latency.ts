/**
 * `npm run bench:latency`: does halving the MACs halve the measured latency? For RepVGG-A0 and a
 * Keras-layers MobileNetV2 (bench/mobilenet-v2.ts), both 224x224x3 and 1000 classes, pruned to 50%
 * of the deployed MACs with the uniform method (the paper's baseline: the same fraction of every
 * layer, no training needed to pick it), then deployed; the unpruned and pruned deployed models
 * are timed on the wasm backend at batch 1 (src/engine/latency.ts: medians, alternating runs).
 *
 * Writes bench/results/latency.json and latency.md. Target (issue 12): latency ratio within 1.2x
 * of the MACs ratio.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backends';
import { deployGraph } from '../src/engine/deploy';
import { summarizeGraph } from '../src/engine/graph/counting';
import { graphFromModel, modelFromGraph } from '../src/engine/graph/modelGraph';
import { compareLatency } from '../src/engine/latency';
import { selectionToLatents, uniformSelection } from '../src/engine/search/maskSelection';
import { MacsBudget } from '../src/engine/budget/macsBudget';
import { insertMasks } from '../src/engine/transform/masks';
import { reparameterizeGraph } from '../src/engine/transform/reparameterize';
import { buildRepVgg } from '../src/engine/zoo/repvgg';
import { buildMobileNetV2 } from './mobilenet-v2';

const NETS: Record<string, () => tf.LayersModel> = {
  'repvgg-a0 (builtin:repvgg-a0)': () => buildRepVgg({ variant: 'A0', inputShape: [224, 224, 3], numClasses: 1000, widthMultiplier: 1, seed: 1 }),
  'mobilenetv2 (Keras layers)': () => buildMobileNetV2({ inputSize: 224, numClasses: 1000 }),
};
const TARGET = 0.5;
const runs = process.argv.includes('--quick') ? 4 : 10;

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

async function measureNet(name: string, build: () => tf.LayersModel) {
  const original = build();
  const plain = graphFromModel(original);
  const { graph, layout } = insertMasks(plain, { initialValue: 1 });
  const budget = new MacsBudget(graph, layout);
  const latents = selectionToLatents(uniformSelection(graph, budget, TARGET * budget.fullMacs), budget.fullWidths);
  for (const [group, values] of latents) graph.weights.get(layout.layerOfGroup.get(group)!)!.latent.values = values;
  const masked = await modelFromGraph(graph);
  const deployment = await deployGraph(graph, masked, original.inputs[0].shape.slice(1) as number[]);
  const unprunedGraph = reparameterizeGraph(plain);
  const unpruned = await modelFromGraph(unprunedGraph);
  const macsBefore = summarizeGraph(unprunedGraph).totalMacs;
  const macsAfter = deployment.deployedSummary.totalMacs;
  const latency = compareLatency(unpruned, deployment.deployed, runs);
  const latencyRatio = latency.latencyAfter / latency.latencyBefore;
  const macsRatio = macsAfter / macsBefore;
  const result = {
    net: name,
    method: 'uniform',
    macsBefore,
    macsAfter,
    macsRatio,
    latencyBeforeMs: latency.latencyBefore,
    latencyAfterMs: latency.latencyAfter,
    latencyRatio,
    /**
     * Sums of the per-layer medians: short timed windows, so much less often hit by a preemption
     * on a loaded machine than one whole pass of a few hundred ms.
     */
    layerSumBeforeMs: sum(latency.latencyLayers.map((l) => l.beforeMs)),
    layerSumAfterMs: sum(latency.latencyLayers.map((l) => l.afterMs ?? 0)),
    layerSumRatio: sum(latency.latencyLayers.map((l) => l.afterMs ?? 0)) / sum(latency.latencyLayers.map((l) => l.beforeMs)),
    /** latency ratio / MACs ratio: 1 = time falls exactly as the MACs do; target <= 1.2. */
    latencyOverMacs: latencyRatio / macsRatio,
    withinTarget: latencyRatio / macsRatio <= 1.2 && macsRatio / latencyRatio <= 1.2,
    reparamMaxAbsDiff: deployment.maxAbsDiff,
    slowestLayersAfter: [...latency.latencyLayers].sort((a, b) => (b.afterMs ?? 0) - (a.afterMs ?? 0)).slice(0, 8),
    layersWithoutMacsShareAfter: shareWithoutMacs(latency.latencyLayers),
  };
  console.log(`- ${name}: MACs ${(macsRatio * 100).toFixed(1)}%, latency ${latency.latencyBefore.toFixed(1)} -> ${latency.latencyAfter.toFixed(1)} ms (${(latencyRatio * 100).toFixed(1)}%), ratio/ratio ${result.latencyOverMacs.toFixed(2)}`);
  for (const m of [original, masked, unpruned, deployment.deployed]) m.dispose();
  return result;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Share of the pruned model's per-layer time spent in layers that have no MACs (activations, pads, adds). */
function shareWithoutMacs(layers: Array<{ type: string; afterMs?: number }>): number {
  const total = layers.reduce((s, l) => s + (l.afterMs ?? 0), 0);
  const withMacs = layers.filter((l) => ['Conv2D', 'DepthwiseConv2D', 'Dense'].includes(l.type)).reduce((s, l) => s + (l.afterMs ?? 0), 0);
  return (total - withMacs) / total;
}

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const loadAverage = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const results = [];
  for (const [name, build] of Object.entries(NETS)) results.push(await measureNet(name, build));
  const report = { date: new Date().toISOString(), backend: backend.name, threads: backend.threads, cpus: os.cpus().length, loadAverageAtStart: loadAverage, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100), targetFraction: TARGET, runsPerModel: runs, results };
  const md = [
    '# Latency after pruning (wasm, batch 1)',
    '',
    `${report.date}; ${report.cpus} CPUs, load average ${loadAverage.join(' ')} at start, ${report.loadAverageAtEnd.join(' ')} at end (a shared machine: ratios from one run, not absolute times). ` +
      `Both nets 224x224x3, 1000 classes, pruned to ${TARGET * 100}% of the deployed MACs with the uniform method, deployed (pruned + BN folded / RepVGG fused), median latency of ${runs} runs each, the runs of the unpruned and the pruned model alternating.`,
    '',
    '| net | MACs before | MACs after | MACs ratio | latency before ms | latency after ms | latency ratio | latency ratio / MACs ratio | within 1.2x | per-layer sum before / after ms | per-layer sum ratio |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
    ...results.map((r) => `| ${r.net} | ${(r.macsBefore / 1e6).toFixed(1)}M | ${(r.macsAfter / 1e6).toFixed(1)}M | ${r.macsRatio.toFixed(3)} | ${r.latencyBeforeMs.toFixed(1)} | ${r.latencyAfterMs.toFixed(1)} | ${r.latencyRatio.toFixed(3)} | ${r.latencyOverMacs.toFixed(2)} | ${r.withinTarget ? 'yes' : 'no'} | ${r.layerSumBeforeMs.toFixed(1)} / ${r.layerSumAfterMs.toFixed(1)} | ${r.layerSumRatio.toFixed(3)} |`),
    '',
    ...results.flatMap((r) => [
      `## ${r.net}: slowest layers after pruning (${(100 * r.layersWithoutMacsShareAfter).toFixed(1)}% of the per-layer time is in layers without MACs)`,
      '',
      '| layer | type | before ms | after ms |',
      '| --- | --- | ---: | ---: |',
      ...r.slowestLayersAfter.map((l) => `| ${l.name} | ${l.type} | ${l.beforeMs.toFixed(2)} | ${(l.afterMs ?? NaN).toFixed(2)} |`),
      '',
    ]),
  ].join('\n');
  const outDir = path.join(repoRoot(), 'bench', 'results');
  fs.writeFileSync(path.join(outDir, 'latency.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'latency.md'), md);
  console.log(md);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
