import type { LatencyReport, ModelFormSummary, ModelReport } from '../../shared/workerProtocol';
import { deployModel } from '../../engine/deploy';
import { inspectModel } from '../../engine/inspect';
import { measureLatency } from '../../engine/latency';
import { imageInputShape, loadModelSource } from '../../engine/model';
import { formatCount, formatTable, Output } from '../output';
import { builtinOptionsFrom, ModelOptions } from '../options';

export interface InspectCliOptions extends ModelOptions {
  /** Measure the deployed form's latency (median of repeated runs) on the chosen backend. */
  latency?: boolean;
  /** Images per timed forward pass (default 1). */
  batch?: number;
}

export async function runInspect(modelSpec: string, options: InspectCliOptions, output: Output): Promise<void> {
  output.start('inspect', modelSpec);
  const loaded = await loadModelSource(modelSpec, builtinOptionsFrom(options));
  const report = inspectModel(loaded.model, loaded.source);
  if (options.latency) {
    // The deployed form is what runs after pruning, and its rows are the table's rows.
    const deployment = await deployModel(loaded.model, imageInputShape(loaded.model, loaded.source));
    report.latency = measureLatency(deployment.deployed, { batch: options.batch ?? 1 });
    deployment.deployed.dispose();
  }
  loaded.model.dispose();
  output.event({ type: 'inspect', report });
  output.event({ type: 'done' });
  printReport(report, output);
}

function printForm(title: string, form: ModelFormSummary, output: Output, latency?: LatencyReport): void {
  output.text(`${title}: ${formatCount(form.totalMacs)} MACs, ${formatCount(form.totalParams)} params`);
  const layerMs = new Map(latency?.perLayer.map((l) => [l.name, l.medianMs]));
  const profiledMs = latency ? latency.perLayer.reduce((sum, l) => sum + l.medianMs, 0) : 0;
  const pctOf = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');
  output.text(
    formatTable(
      ['layer', 'type', 'in', 'out', 'k', 'stride', 'MACs', 'params', '% MACs', ...(latency ? ['ms', '% time'] : [])],
      form.layers.map((l) => {
        const ms = layerMs.get(l.name);
        const timing = latency ? [ms === undefined ? '-' : ms.toFixed(3), ms === undefined ? '-' : pctOf(ms, profiledMs)] : [];
        return [l.name, l.type, l.inChannels, l.outChannels, l.kernelSize, l.stride, l.macs, l.params, pctOf(l.macs, form.totalMacs), ...timing];
      }),
    ),
  );
  output.text(`total${' '.repeat(4)}MACs ${form.totalMacs.toLocaleString('en-US')}  params ${form.totalParams.toLocaleString('en-US')}`);
  if (latency) {
    const inRows = form.layers.reduce((sum, l) => sum + (layerMs.get(l.name) ?? 0), 0);
    output.text(
      `latency (${latency.backend}, batch ${latency.batch}, median of ${latency.runs} runs after ${latency.warmup} warm-up): ${latency.medianMs.toFixed(3)} ms per pass; ` +
        `layers one by one ${profiledMs.toFixed(3)} ms, of which ${(profiledMs - inRows).toFixed(3)} ms (${pctOf(profiledMs - inRows, profiledMs)}) in layers without MACs (activations, pooling, adds, reshapes)`,
    );
  }
  output.text();
}

function printReport(report: ModelReport, output: Output): void {
  output.text(`model: ${report.modelPath}  input ${report.inputShape.join('x')}  classes ${report.numClasses}`);
  output.text();
  printForm('training-time form', report.trainingForm, output);
  printForm('deployed form (reparameterized)', report.deployedForm, output, report.latency);
  output.text(`prunable channel groups (one DBC mask each): ${report.prunableGroups.length}`);
  output.text(formatTable(['group', 'width', 'layers'], report.prunableGroups.map((g) => [g.name, g.width, g.layers.join(', ')])));
  const fixed = report.fixedGroups ?? [];
  if (fixed.length > 0) {
    output.text();
    output.text(`fixed channel groups (held at full width): ${fixed.length}`);
    output.text(formatTable(['group', 'width', 'layers', 'why'], fixed.map((g) => [g.name, g.width, g.layers.join(', '), g.reason])));
  }
  const unknown = report.unknownLayers ?? [];
  if (unknown.length > 0) {
    output.text();
    output.text(`layers PaS has no rule for (kept as they are; the channels around them keep their width): ${unknown.length}`);
    output.text(formatTable(['layer', 'type', 'output shape'], unknown.map((l) => [l.name, l.type, l.outputShape.join('x')])));
  }
  const unfused = report.unfusedBlocks ?? [];
  if (unfused.length > 0) {
    output.text();
    output.text(`multi-branch blocks left unfused (a fusion would not be exact): ${unfused.length}`);
    output.text(formatTable(['block', 'why'], unfused.map((b) => [b.block, b.reason])));
  }
}
