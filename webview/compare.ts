/**
 * The search panel's "Compare with baselines" section: per-method progress while the baselines
 * run, then the comparison (compare.json) as a table (accuracy or agreement, MACs, params,
 * measured latency), the widths per layer side by side, and a grouped bar chart of those widths.
 * The section is rebuilt only when the host's state changes (a few times per second at most).
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type ChartConfiguration } from 'chart.js';
import type { CompareReport } from '../src/engine/compare/compare';
import { formatCount as fmtCount, formatPercent as fmtPct } from '../src/shared/format';
import type { CompareState, WebviewToHostMessage } from '../src/shared/webviewProtocol';
import { el, replaceChildren } from './dom';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

let rendered: string | undefined;
let chart: Chart<'bar'> | undefined;

function themeColor(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Renders `state` into `section` (hidden while there is no comparison). */
export function renderCompare(section: HTMLElement, state: CompareState | undefined, post: (m: WebviewToHostMessage) => void): void {
  const key = JSON.stringify(state ?? null);
  if (key === rendered && section.childElementCount > 0) return;
  rendered = key;
  chart?.destroy();
  chart = undefined;
  if (!state) {
    section.hidden = true;
    replaceChildren(section);
    return;
  }
  const appearing = section.hidden;
  section.hidden = false;
  const cancel = el('vscode-button', { testid: 'compare-cancel', secondary: '' }, 'Cancel Comparison');
  cancel.addEventListener('click', () => post({ type: 'cancelCompare' }));
  replaceChildren(
    section,
    el('h2', {}, 'Compare with baselines'),
    el('p', { class: 'muted' }, `Same model, data, MACs target, seed and weight-training epochs; the baselines fine-tune for the search + fine-tune epochs. Folder: ${state.compareDir}`),
    el('div', { class: 'compare-status', testid: 'compare-status', 'data-status': state.status }, `Comparison ${state.status}`, state.status === 'running' ? cancel : ''),
    state.failure ? el('div', { class: 'error', role: 'alert', testid: 'compare-failure' }, state.failure) : '',
    el('table', { testid: 'compare-progress' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Method'), el('th', {}, 'State'), el('th', { class: 'num' }, 'Epochs (search + fine-tune)'), el('th', {}, 'Progress'))),
      el('tbody', {},
        ...state.methods.map((m) =>
          el('tr', { testid: 'compare-progress-row', 'data-method': m.method, 'data-state': m.state },
            el('td', {}, m.method),
            el('td', {}, m.state),
            el('td', { class: 'num' }, `${m.searchEpochs} + ${m.finetuneEpochs}`),
            el('td', { class: 'muted' }, m.detail ?? ''))))),
    ...(state.compare ? resultSections(state.compare) : []),
  );
  if (state.compare) chart = widthsChart(section.querySelector('canvas')!, state.compare);
  // the section sits below the run's charts: bring it into view when the comparison starts
  if (appearing && state.status === 'running') section.scrollIntoView({ block: 'start' });
}

function resultSections(c: CompareReport): HTMLElement[] {
  // without labels the "accuracy" of every run is its top-1 agreement with the original model
  const agreement = c.rows.some((r) => r.labelled === false);
  const accuracyHeader = agreement ? 'Agreement with original' : 'Accuracy';
  const layers = c.rows[0]?.widths ?? [];
  return [
    el('table', { testid: 'compare-table', 'data-rows': String(c.rows.length) },
      el('thead', {}, el('tr', {}, ...['Method', accuracyHeader, 'MACs', 'MACs %', 'Params', 'Latency ms'].map((h, i) => el('th', i > 0 ? { class: 'num' } : {}, h)))),
      el('tbody', {},
        el('tr', { class: 'muted' }, el('td', {}, 'unpruned'), el('td', { class: 'num' }, fmtPct(c.accuracyBefore)), el('td', { class: 'num' }, fmtCount(c.macsBefore)), el('td', { class: 'num' }, '100%'), el('td', { class: 'num' }, fmtCount(c.paramsBefore)), el('td', { class: 'num' }, c.latencyBefore === undefined ? '–' : c.latencyBefore.toFixed(2))),
        ...c.rows.map((r) =>
          el('tr', { testid: 'compare-row', 'data-method': r.method, 'data-accuracy': String(r.accuracy), 'data-macs': String(r.macs), 'data-params': String(r.params) },
            el('td', {}, r.method),
            el('td', { class: 'num' }, fmtPct(r.accuracy)),
            el('td', { class: 'num' }, fmtCount(r.macs)),
            el('td', { class: 'num' }, fmtPct(r.macsFraction)),
            el('td', { class: 'num' }, fmtCount(r.params)),
            el('td', { class: 'num' }, r.latencyMs === null ? 'n/a' : r.latencyMs.toFixed(2)))))),
    el('h2', {}, 'Width per layer, per method'),
    // the canvas alone in a box of fixed height: Chart.js fills its parent (maintainAspectRatio off)
    el('div', { class: 'compare-chart-box' }, el('canvas', { testid: 'compare-chart' })),
    el('table', { testid: 'compare-widths-table' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Group'), el('th', { class: 'num' }, 'Original'), ...c.rows.map((r) => el('th', { class: 'num' }, r.method)))),
      el('tbody', {},
        ...layers.map((l, i) =>
          el('tr', { testid: 'compare-widths-row', 'data-group': l.name },
            el('td', {}, l.name),
            el('td', { class: 'num' }, String(l.originalWidth)),
            ...c.rows.map((r) => el('td', { class: 'num', 'data-method': r.method }, String(r.widths[i]?.width ?? '–'))))))),
  ];
}

/** Grouped bars: for each layer the original width, then each method's. */
function widthsChart(canvas: HTMLCanvasElement, c: CompareReport): Chart<'bar'> {
  const palette = [themeColor('--vscode-charts-blue', '#3794ff'), themeColor('--vscode-charts-orange', '#d18616'), themeColor('--vscode-charts-green', '#89d185'), themeColor('--vscode-charts-purple', '#b180d7'), themeColor('--vscode-charts-red', '#f14c4c')];
  const layers = c.rows[0]?.widths ?? [];
  return new Chart(canvas, {
    type: 'bar',
    data: {
      labels: layers.map((l) => l.name),
      datasets: [
        { label: 'original', data: layers.map((l) => l.originalWidth), backgroundColor: themeColor('--vscode-disabledForeground', '#888') },
        ...c.rows.map((r, i) => ({ label: r.method, data: r.widths.map((w) => w.width), backgroundColor: palette[i % palette.length] })),
      ],
    },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, title: { display: true, text: 'channels' } } } },
  } satisfies ChartConfiguration<'bar'>);
}
