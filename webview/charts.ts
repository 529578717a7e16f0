/**
 * The panel's Chart.js charts: MACs budget (original / target / current), loss and accuracy per
 * epoch, MACs per epoch, and original vs searched width per group. Colours come from the VS Code
 * theme variables; updates skip animation so frequent updates stay cheap.
 */
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip, type ChartConfiguration } from 'chart.js';
import type { SearchState } from './searchState';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

function themeColor(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export class SearchCharts {
  private readonly budget: Chart<'bar'>;
  private readonly curves: Chart<'line'>;
  private readonly macs: Chart<'line'>;
  private readonly widths: Chart<'bar'>;

  constructor(budgetCanvas: HTMLCanvasElement, curvesCanvas: HTMLCanvasElement, macsCanvas: HTMLCanvasElement, widthsCanvas: HTMLCanvasElement) {
    const fg = themeColor('--vscode-foreground', '#ccc');
    const grid = themeColor('--vscode-widget-border', 'rgba(128,128,128,0.3)');
    const blue = themeColor('--vscode-charts-blue', '#3794ff');
    const orange = themeColor('--vscode-charts-orange', '#d18616');
    const green = themeColor('--vscode-charts-green', '#89d185');
    const purple = themeColor('--vscode-charts-purple', '#b180d7');
    const grey = themeColor('--vscode-disabledForeground', '#888');
    Chart.defaults.color = fg;
    Chart.defaults.borderColor = grid;
    Chart.defaults.font.family = themeColor('--vscode-font-family', 'sans-serif');
    const common = { animation: false as const, responsive: true, maintainAspectRatio: false };

    this.budget = new Chart(budgetCanvas, {
      type: 'bar',
      data: { labels: ['Original', 'Target', 'Current'], datasets: [{ label: 'MACs', data: [0, 0, 0], backgroundColor: [grey, orange, blue] }] },
      options: { ...common, indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
    } satisfies ChartConfiguration<'bar'>);
    this.curves = new Chart(curvesCanvas, {
      type: 'line',
      data: {
        labels: [],
        datasets: [
          { label: 'loss', data: [], borderColor: orange, backgroundColor: orange, yAxisID: 'loss' },
          { label: 'train accuracy', data: [], borderColor: blue, backgroundColor: blue, yAxisID: 'acc' },
          { label: 'val accuracy', data: [], borderColor: green, backgroundColor: green, yAxisID: 'acc' },
        ],
      },
      options: { ...common, scales: { loss: { position: 'left', beginAtZero: true }, acc: { position: 'right', min: 0, max: 1, grid: { drawOnChartArea: false } } } },
    } satisfies ChartConfiguration<'line'>);
    this.macs = new Chart(macsCanvas, {
      type: 'line',
      data: { labels: [], datasets: [{ label: 'MACs', data: [], borderColor: purple, backgroundColor: purple }, { label: 'target', data: [], borderColor: orange, borderDash: [4, 4], pointRadius: 0 }] },
      options: { ...common, scales: { y: { beginAtZero: true } } },
    } satisfies ChartConfiguration<'line'>);
    this.widths = new Chart(widthsCanvas, {
      type: 'bar',
      data: { labels: [], datasets: [{ label: 'original', data: [], backgroundColor: grey }, { label: 'searched', data: [], backgroundColor: blue }] },
      options: { ...common, scales: { y: { beginAtZero: true } } },
    } satisfies ChartConfiguration<'bar'>);
  }

  update(s: SearchState): void {
    const m = s.model;
    this.budget.data.datasets[0].data = [m?.macsOriginal ?? 0, m?.macsTarget ?? 0, s.currentMacs ?? 0];
    this.budget.update('none');

    const labels = s.epochs.map((e) => `${e.phase[0]}${e.epoch}`);
    this.curves.data.labels = labels;
    this.curves.data.datasets[0].data = s.epochs.map((e) => e.loss);
    this.curves.data.datasets[1].data = s.epochs.map((e) => e.accuracy);
    this.curves.data.datasets[2].data = s.epochs.map((e) => e.valAccuracy);
    this.curves.update('none');

    this.macs.data.labels = labels;
    this.macs.data.datasets[0].data = s.epochs.map((e) => (e.macs > 0 ? e.macs : null));
    this.macs.data.datasets[1].data = s.epochs.map(() => m?.macsTarget ?? 0);
    this.macs.update('none');

    this.widths.data.labels = s.groups.map((g) => g.name);
    this.widths.data.datasets[0].data = s.groups.map((g) => g.originalWidth);
    this.widths.data.datasets[1].data = s.groups.map((g) => g.searchedWidth);
    this.widths.update('none');
  }

  dispose(): void {
    for (const c of [this.budget, this.curves, this.macs, this.widths]) c.destroy();
  }
}
