import type { ModelFormSummary, ModelReport } from '../../shared/workerProtocol';
import { inspectModel } from '../../engine/inspect';
import { loadModelSource } from '../../engine/model';
import { formatCount, formatTable, Output } from '../output';
import { builtinOptionsFrom, ModelOptions } from '../options';

export async function runInspect(modelSpec: string, options: ModelOptions, output: Output): Promise<void> {
  output.start('inspect', modelSpec);
  const loaded = await loadModelSource(modelSpec, builtinOptionsFrom(options));
  const report = inspectModel(loaded.model, loaded.source);
  loaded.model.dispose();
  output.event({ type: 'inspect', report });
  output.event({ type: 'done' });
  printReport(report, output);
}

function printForm(title: string, form: ModelFormSummary, output: Output): void {
  output.text(`${title}: ${formatCount(form.totalMacs)} MACs, ${formatCount(form.totalParams)} params`);
  output.text(
    formatTable(
      ['layer', 'type', 'in', 'out', 'k', 'stride', 'MACs', 'params', '% MACs'],
      form.layers.map((l) => [l.name, l.type, l.inChannels, l.outChannels, l.kernelSize, l.stride, l.macs, l.params, form.totalMacs > 0 ? `${((100 * l.macs) / form.totalMacs).toFixed(1)}%` : '-']),
    ),
  );
  output.text(`total${' '.repeat(4)}MACs ${form.totalMacs.toLocaleString('en-US')}  params ${form.totalParams.toLocaleString('en-US')}`);
  output.text();
}

function printReport(report: ModelReport, output: Output): void {
  output.text(`model: ${report.modelPath}  input ${report.inputShape.join('x')}  classes ${report.numClasses}`);
  output.text();
  printForm('training-time form', report.trainingForm, output);
  printForm('deployed form (reparameterized)', report.deployedForm, output);
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
