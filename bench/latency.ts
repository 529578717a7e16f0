/**
 * `npm run bench:latency`: does halving the MACs halve the measured latency? For RepVGG-A0, a
 * Keras-layers MobileNetV2 (bench/mobilenet-v2.ts) and, when its git-ignored fixture is present,
 * the real nsfwjs MobileNetV2 (test/fixtures/real/mobilenet_v2, `scripts/fetch-real-models.sh`),
 * all 224x224x3, pruned to 50% of the deployed MACs with the uniform method (the paper's baseline:
 * the same fraction of every layer, no training needed to pick it), then deployed. Every net is
 * pruned three times at the same MACs target: with the default width rule (`--round-to auto`:
 * multiples of 8 in layers of 64+ channels, any count below), with any width (`--round-to 1`) and
 * with every width a multiple of 8 (`--round-to 8`), so one run compares the rules.
 *
 * Every model is timed in two deployed forms: with the speed folds of
 * src/engine/transform/deployFolds.ts (what PaS writes) and without them (BN folded, RepVGG fused
 * only), so one run shows what the folds buy. The unpruned and pruned models of a net are timed on
 * the wasm backend at batch 1, their runs interleaved (src/engine/latency.ts: medians).
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
import { graphFromModel, ModelGraph, modelFromGraph } from '../src/engine/graph/modelGraph';
import { loadLayersModelFromFile } from '../src/engine/io';
import { joinLatencies, measureAlternating } from '../src/engine/latency';
import { selectionToLatents, uniformSelection } from '../src/engine/search/maskSelection';
import { DEFAULT_WIDTH_CONSTRAINTS, WidthLattice, type RoundTo } from '../src/engine/search/widthConstraints';
import { MacsBudget } from '../src/engine/budget/macsBudget';
import { insertMasks } from '../src/engine/transform/masks';
import { keptChannelsFromMasks, pruneGraph } from '../src/engine/transform/prune';
import { reparameterizeGraph, reparameterizeWithReport } from '../src/engine/transform/reparameterize';
import { buildRepVgg } from '../src/engine/zoo/repvgg';
import { buildMobileNetV2 } from './mobilenet-v2';

const REAL_MOBILENET = path.join(repoRoot(), 'test', 'fixtures', 'real', 'mobilenet_v2', 'model.json');

interface Net {
  name: string;
  build: () => Promise<tf.LayersModel>;
  /** Width roundings to prune with (1: any width; 'auto': the default rule). */
  roundings: RoundTo[];
}

/** The default rule first: its rows are the ones the target is judged on, the others compare. */
const ROUNDINGS: RoundTo[] = [DEFAULT_WIDTH_CONSTRAINTS.roundTo, 1, 8];

const NETS: Net[] = [
  { name: 'repvgg-a0 (builtin:repvgg-a0)', build: async () => buildRepVgg({ variant: 'A0', inputShape: [224, 224, 3], numClasses: 1000, widthMultiplier: 1, seed: 1 }), roundings: ROUNDINGS },
  { name: 'mobilenetv2 (Keras layers)', build: async () => buildMobileNetV2({ inputSize: 224, numClasses: 1000 }), roundings: ROUNDINGS },
  { name: 'mobilenetv2 (real nsfwjs)', build: () => loadLayersModelFromFile(REAL_MOBILENET), roundings: ROUNDINGS },
];
const TARGET = 0.5;
const runs = process.argv.includes('--quick') ? 4 : 15;
const MAC_LAYERS = ['Conv2D', 'DepthwiseConv2D', 'Dense', 'SeparableConv2D', 'Conv2DTranspose'];

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** The masked graph pruned uniformly to the target with widths under the `roundTo` rule. */
function uniformlyMasked(plain: ModelGraph, roundTo: RoundTo): ModelGraph {
  const { graph, layout } = insertMasks(plain, { initialValue: 1 });
  const budget = new MacsBudget(graph, layout);
  const lattice = new WidthLattice(budget.groups, { minKeep: 0, roundTo, keep: [] });
  const latents = selectionToLatents(uniformSelection(graph, budget, TARGET * budget.fullMacs, lattice), budget.fullWidths);
  for (const [group, values] of latents) graph.weights.get(layout.layerOfGroup.get(group)!)!.latent.values = values;
  return graph;
}

/** Share of a model's per-layer time spent in layers that have no MACs (activations, pads, adds). */
function shareWithoutMacs(layers: Array<{ type: string; medianMs: number }>): number {
  return sum(layers.filter((l) => !MAC_LAYERS.includes(l.type)).map((l) => l.medianMs)) / sum(layers.map((l) => l.medianMs));
}

async function measureNet(net: Net) {
  const original = await net.build();
  const inputShape = original.inputs[0].shape.slice(1) as number[];
  const plain = graphFromModel(original);
  const unprunedGraph = reparameterizeGraph(plain);
  const macsBefore = summarizeGraph(unprunedGraph).totalMacs;
  const unpruned = await modelFromGraph(unprunedGraph);
  const unprunedUnfolded = await modelFromGraph(reparameterizeWithReport(plain, { speedFolds: false }).graph);
  const pruned = [];
  for (const roundTo of net.roundings) {
    const masked = uniformlyMasked(plain, roundTo);
    const reference = await modelFromGraph(masked);
    const deployment = await deployGraph(masked, reference, inputShape);
    reference.dispose();
    const unfolded = await modelFromGraph(reparameterizeWithReport(pruneGraph(masked, keptChannelsFromMasks(masked)), { speedFolds: false }).graph);
    pruned.push({ roundTo, deployment, unfolded });
  }
  // One interleaved measurement of every form: [unpruned, pruned..., unpruned unfolded, pruned unfolded...].
  const reports = measureAlternating([unpruned, ...pruned.map((p) => p.deployment.deployed), unprunedUnfolded, ...pruned.map((p) => p.unfolded)], runs);
  const before = reports[0];
  const beforeUnfolded = reports[1 + pruned.length];
  const rows = pruned.map((p, i) => {
    const after = reports[1 + i];
    const afterUnfolded = reports[2 + pruned.length + i];
    const macsAfter = p.deployment.deployedSummary.totalMacs;
    const macsRatio = macsAfter / macsBefore;
    const latencyRatio = after.medianMs / before.medianMs;
    const unfoldedRatio = afterUnfolded.medianMs / beforeUnfolded.medianMs;
    const layers = joinLatencies(before, after).latencyLayers;
    const row = {
      net: net.name,
      method: 'uniform',
      roundTo: p.roundTo,
      macsBefore,
      macsAfter,
      macsRatio,
      latencyBeforeMs: before.medianMs,
      latencyAfterMs: after.medianMs,
      latencyRatio,
      /** latency ratio / MACs ratio: 1 = time falls exactly as the MACs do; target <= 1.2. */
      latencyOverMacs: latencyRatio / macsRatio,
      withinTarget: latencyRatio / macsRatio <= 1.2 && macsRatio / latencyRatio <= 1.2,
      /**
       * Sums of the per-layer medians: short timed windows, so much less often hit by a preemption
       * on a loaded machine than one whole pass.
       */
      /** The fastest pass of each (on a loaded machine the least disturbed): its ratio beside the medians'. */
      fastestBeforeMs: before.minMs,
      fastestAfterMs: after.minMs,
      fastestRatioOverMacs: after.minMs / before.minMs / macsRatio,
      layerSumBeforeMs: sum(before.perLayer.map((l) => l.medianMs)),
      layerSumAfterMs: sum(after.perLayer.map((l) => l.medianMs)),
      layerSumRatio: sum(after.perLayer.map((l) => l.medianMs)) / sum(before.perLayer.map((l) => l.medianMs)),
      /** The same models without the deploy speed folds. */
      withoutFolds: {
        latencyBeforeMs: beforeUnfolded.medianMs,
        latencyAfterMs: afterUnfolded.medianMs,
        latencyRatio: unfoldedRatio,
        latencyOverMacs: unfoldedRatio / macsRatio,
        fastestBeforeMs: beforeUnfolded.minMs,
        fastestAfterMs: afterUnfolded.minMs,
        fastestRatioOverMacs: afterUnfolded.minMs / beforeUnfolded.minMs / macsRatio,
        layerSumRatio: sum(afterUnfolded.perLayer.map((l) => l.medianMs)) / sum(beforeUnfolded.perLayer.map((l) => l.medianMs)),
        layersBefore: beforeUnfolded.perLayer.length,
        layersWithoutMacsShareAfter: shareWithoutMacs(afterUnfolded.perLayer),
      },
      layersBefore: before.perLayer.length,
      reparamMaxAbsDiff: p.deployment.maxAbsDiff,
      slowestLayersAfter: [...layers].sort((a, b) => (b.afterMs ?? 0) - (a.afterMs ?? 0)).slice(0, 8),
      layersWithoutMacsShareAfter: shareWithoutMacs(after.perLayer),
    };
    console.log(
      `- ${net.name}, round-to ${p.roundTo}: MACs ${(macsRatio * 100).toFixed(1)}%, latency ${before.medianMs.toFixed(1)} -> ${after.medianMs.toFixed(1)} ms (${(latencyRatio * 100).toFixed(1)}%), ratio/ratio ${row.latencyOverMacs.toFixed(2)}; ` +
        `without folds ${beforeUnfolded.medianMs.toFixed(1)} -> ${afterUnfolded.medianMs.toFixed(1)} ms, ratio/ratio ${row.withoutFolds.latencyOverMacs.toFixed(2)}`,
    );
    return row;
  });
  for (const m of [original, unpruned, unprunedUnfolded, ...pruned.flatMap((p) => [p.deployment.deployed, p.unfolded])]) m.dispose();
  return rows;
}

const fmt = (v: number, digits: number) => v.toFixed(digits);

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const loadAverage = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const results = [];
  const skipped: string[] = [];
  for (const net of NETS) {
    if (net.name.includes('real') && !fs.existsSync(REAL_MOBILENET)) {
      const note = `${net.name}: skipped, ${path.relative(repoRoot(), REAL_MOBILENET)} is absent (bash scripts/fetch-real-models.sh)`;
      console.log(`- ${note}`);
      skipped.push(note);
      continue;
    }
    results.push(...(await measureNet(net)));
  }
  const report = { date: new Date().toISOString(), backend: backend.name, threads: backend.threads, cpus: os.cpus().length, loadAverageAtStart: loadAverage, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100), targetFraction: TARGET, runsPerModel: runs, skipped, results };
  const md = [
    '# Latency after pruning (wasm, batch 1)',
    '',
    `${report.date}; ${report.cpus} CPUs, load average ${loadAverage.join(' ')} at start, ${report.loadAverageAtEnd.join(' ')} at end (a shared machine: ratios from one run, not absolute times). ` +
      `All nets 224x224x3, pruned to ${TARGET * 100}% of the deployed MACs with the uniform method under three width rules (round-to auto, the default: multiples of 8 in layers of 64 channels or more, any count below; 1: any width; 8: every width a multiple of 8), deployed (pruned + BN folded / RepVGG fused + the speed folds: dropout skipped, TF-'same' ZeroPadding2D and ReLU taken into the conv), median latency of ${runs} runs each (and the fastest run, the least disturbed on a loaded machine), the runs of all forms of a net interleaved.`,
    '',
    '| net | round-to | MACs before | MACs after | MACs ratio | latency before ms | latency after ms | latency ratio | latency ratio / MACs ratio | within 1.2x | fastest pass: before / after ms, ratio / MACs ratio | per-layer sum ratio | without folds: before / after ms | without folds: ratio / MACs ratio (fastest pass) | without folds: per-layer sum ratio |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...results.map((r) =>
      `| ${r.net} | ${r.roundTo === DEFAULT_WIDTH_CONSTRAINTS.roundTo ? `${r.roundTo} (default)` : r.roundTo} | ${fmt(r.macsBefore / 1e6, 1)}M | ${fmt(r.macsAfter / 1e6, 1)}M | ${fmt(r.macsRatio, 3)} | ${fmt(r.latencyBeforeMs, 1)} | ${fmt(r.latencyAfterMs, 1)} | ${fmt(r.latencyRatio, 3)} | ${fmt(r.latencyOverMacs, 2)} | ${r.withinTarget ? 'yes' : 'no'} | ${fmt(r.fastestBeforeMs, 1)} / ${fmt(r.fastestAfterMs, 1)}, ${fmt(r.fastestRatioOverMacs, 2)} | ${fmt(r.layerSumRatio, 3)} | ${fmt(r.withoutFolds.latencyBeforeMs, 1)} / ${fmt(r.withoutFolds.latencyAfterMs, 1)} | ${fmt(r.withoutFolds.latencyOverMacs, 2)} (${fmt(r.withoutFolds.fastestRatioOverMacs, 2)}) | ${fmt(r.withoutFolds.layerSumRatio, 3)} |`),
    ...(skipped.length ? ['', ...skipped.map((s) => `Skipped: ${s}.`)] : []),
    '',
    ...results.filter((r) => r.roundTo === DEFAULT_WIDTH_CONSTRAINTS.roundTo).flatMap((r) => [
      `## ${r.net}, round-to ${r.roundTo}: slowest layers after pruning (${r.layersBefore} layers timed, ${r.withoutFolds.layersBefore} without the folds; ${fmt(100 * r.layersWithoutMacsShareAfter, 1)}% of the per-layer time is in layers without MACs, ${fmt(100 * r.withoutFolds.layersWithoutMacsShareAfter, 1)}% without the folds)`,
      '',
      '| layer | type | before ms | after ms |',
      '| --- | --- | ---: | ---: |',
      ...r.slowestLayersAfter.map((l) => `| ${l.name} | ${l.type} | ${fmt(l.beforeMs, 2)} | ${fmt(l.afterMs ?? NaN, 2)} |`),
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
