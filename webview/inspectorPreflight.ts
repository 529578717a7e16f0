/**
 * The inspector's pre-flight: what PaS will hold at full width and why, the layers it has no rule
 * for (kept as they are), and the multi-branch blocks that stay unfused. Empty when all is prunable.
 */
import type { ModelReport } from '../src/shared/workerProtocol';
import { el } from './dom';

function table(title: string, testid: string, header: string[], rows: string[][]): HTMLElement {
  return el('section', {},
    el('h2', {}, title),
    el('table', { testid },
      el('thead', {}, el('tr', {}, ...header.map((h) => el('th', {}, h)))),
      el('tbody', {}, ...rows.map((cells) => el('tr', { testid: `${testid}-row` }, ...cells.map((c) => el('td', {}, c)))))));
}

export function preflightSections(r: ModelReport): HTMLElement[] {
  const sections: HTMLElement[] = [];
  const fixed = r.fixedGroups ?? [];
  if (fixed.length > 0) {
    sections.push(table(`Fixed groups (held at full width): ${fixed.length}`, 'inspector-fixed-groups', ['Group', 'Width', 'Layers', 'Why'],
      fixed.map((g) => [g.name, String(g.width), g.layers.join(', '), g.reason])));
  }
  const unknown = r.unknownLayers ?? [];
  if (unknown.length > 0) {
    sections.push(table(`Layers PaS has no rule for (kept as they are): ${unknown.length}`, 'inspector-unknown-layers', ['Layer', 'Type', 'Output shape'],
      unknown.map((l) => [l.name, l.type, l.outputShape.join('×')])));
  }
  const unfused = r.unfusedBlocks ?? [];
  if (unfused.length > 0) {
    sections.push(table(`Blocks left unfused (a fusion would not be exact): ${unfused.length}`, 'inspector-unfused-blocks', ['Block', 'Why'],
      unfused.map((b) => [b.block, b.reason])));
  }
  return sections;
}
