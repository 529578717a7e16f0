/**
 * The PaS webviews (search panel and model inspector), one bundle; `body[data-view]` picks the view.
 *
 * Protocol (src/shared/webviewProtocol.ts): post `ready`, receive `init` (a full snapshot), then
 * `event` / `status` deltas. State is a fold over events (searchState.ts); rendering is coalesced
 * to one pass per animation frame, so a flood of messages cannot freeze the page. All text from
 * the host (model names, paths, error messages) goes in with textContent, never as HTML.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-divider/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import './style.css';
import type { CompareState, HostToWebviewMessage, InspectorInitMessage, RunStatus, SearchInitMessage, WebviewToHostMessage } from '../src/shared/webviewProtocol';
import { WEBVIEW_PROTOCOL_VERSION } from '../src/shared/webviewProtocol';
import type { LatencyReport, ModelFormSummary, ModelReport } from '../src/shared/workerProtocol';
import { renderBackendInfo } from './backendInfo';
import { SearchCharts } from './charts';
import { formatCount as fmtCount, formatPercent as fmtPct } from '../src/shared/format';
import { el, replaceChildren } from './dom';
import { renderSetup } from './setupForm';
import { preflightSections } from './inspectorPreflight';
import { renderCompare } from './compare';
import { applySearchEvent, foldSearchEvents, initialSearchState, type SearchState } from './searchState';

declare function acquireVsCodeApi(): { postMessage(message: WebviewToHostMessage): void };
const vscode = acquireVsCodeApi();
const app = document.getElementById('app')!;

function post(message: WebviewToHostMessage): void {
  vscode.postMessage(message);
}

// ------------------------------------------------------------------------------------------------
// Search panel

interface SearchView {
  init: SearchInitMessage;
  state: SearchState;
  status: RunStatus;
  failure?: string;
  /** "Compare with baselines" of this run, once started. */
  compare?: CompareState;
}

let search: SearchView | undefined;
let charts: SearchCharts | undefined;
let frameRequested = false;

function scheduleRender(): void {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    if (search) renderSearch(search);
  });
}

function button(label: string, onClick: () => void, options: { secondary?: boolean; disabled?: boolean; testid: string }): HTMLElement {
  const b = el('vscode-button', { testid: options.testid }, label);
  if (options.secondary) b.setAttribute('secondary', '');
  if (options.disabled) b.setAttribute('disabled', '');
  b.addEventListener('click', () => {
    if (!b.hasAttribute('disabled')) onClick();
  });
  return b;
}

function buildSearchSkeleton(init: SearchInitMessage): void {
  charts?.dispose();
  replaceChildren(
    app,
    el('header', {},
      el('h1', {}, `PaS search — ${init.run.label}`),
      el('vscode-badge', { testid: 'status', id: 'status' }),
      el('span', { id: 'phase', class: 'muted', testid: 'phase' })),
    el('div', { id: 'backend', class: 'muted', testid: 'backend' }),
    el('p', { class: 'muted' },
      `${init.run.model} · data ${init.run.dataSpec} · keep ${fmtPct(init.run.targetFraction)} of MACs · epochs: ${init.run.epochs.pretrain ?? 'default'} pretrain, ${init.run.epochs.search} search, ${init.run.epochs.finetune} fine-tune`),
    el('vscode-progress-bar', { id: 'progress', testid: 'progress' }),
    el('div', { id: 'failure', class: 'error', role: 'alert', testid: 'failure', hidden: '' }),
    el('div', { id: 'actions', class: 'actions' }),
    el('section', { class: 'cards', id: 'cards' }),
    el('section', { class: 'grid' },
      el('div', { class: 'chart-box' }, el('h2', {}, 'Width per prunable group'), el('canvas', { id: 'widths-chart' })),
      el('div', { class: 'chart-box' }, el('h2', {}, 'MACs budget'), el('canvas', { id: 'budget-chart' }))),
    el('section', { class: 'grid' },
      el('div', { class: 'chart-box' }, el('h2', {}, 'Loss and accuracy per epoch'), el('canvas', { id: 'curves-chart' })),
      el('div', { class: 'chart-box' }, el('h2', {}, 'MACs per epoch'), el('canvas', { id: 'macs-chart' }))),
    el('section', { id: 'summary', testid: 'summary', hidden: '' }),
    el('section', { id: 'compare', testid: 'compare', hidden: '' }),
    el('section', {},
      el('h2', {}, 'Widths'),
      el('table', { id: 'widths-table', testid: 'widths-table' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Group'), el('th', { class: 'num' }, 'Original'), el('th', { class: 'num' }, 'Searched'), el('th', { class: 'num' }, 'Kept'))),
        el('tbody', { id: 'widths-body' }))),
  );
  charts = new SearchCharts(
    document.getElementById('budget-chart') as HTMLCanvasElement,
    document.getElementById('curves-chart') as HTMLCanvasElement,
    document.getElementById('macs-chart') as HTMLCanvasElement,
    document.getElementById('widths-chart') as HTMLCanvasElement,
  );
}

function renderSearch(view: SearchView): void {
  const s = view.state;
  const status = document.getElementById('status')!;
  status.textContent = view.status;
  status.dataset.status = view.status;
  document.body.dataset.status = view.status;

  const phase = document.getElementById('phase')!;
  const b = s.lastBatch;
  if (view.status === 'running') {
    phase.textContent = s.phase
      ? `${s.phase.phase}${b && b.phase === s.phase.phase ? ` · epoch ${b.epoch} · batch ${b.batch}/${b.batches}${b.etaSeconds > 0 ? ` · ~${Math.round(b.etaSeconds)} s left` : ''}` : ''}`
      : 'starting…';
  } else if (view.status === 'done') {
    phase.textContent = s.done?.report ? `finished in ${Math.round(s.done.report.wallSeconds)} s` : 'finished';
  } else if (view.status === 'cancelled') {
    phase.textContent = s.cancelled?.checkpoint ? `stopped; resumable from ${s.cancelled.checkpoint}` : 'stopped';
  } else {
    phase.textContent = '';
  }
  const progress = document.getElementById('progress')!;
  progress.hidden = view.status !== 'running';

  renderBackendInfo(document.getElementById('backend')!, s.start, () => post({ type: 'setUpNativeBackend' }));

  const failure = document.getElementById('failure')!;
  const failureText = view.status === 'failed' ? (s.error ? s.error.message + (s.error.file ? ` (${s.error.file})` : '') : view.failure ?? 'The worker failed.') : '';
  failure.textContent = failureText;
  failure.hidden = failureText === '';

  const running = view.status === 'running';
  const done = view.status === 'done';
  replaceChildren(
    document.getElementById('actions')!,
    button('Cancel Search', () => post({ type: 'cancel' }), { disabled: !running, testid: 'cancel' }),
    button('Reparameterize', () => post({ type: 'reparameterize' }), { secondary: true, disabled: !done, testid: 'reparameterize' }),
    button('Open report.json', () => post({ type: 'open', target: 'report' }), { secondary: true, disabled: !done, testid: 'open-report' }),
    button('Open Deployed Model', () => post({ type: 'open', target: 'deployedModel' }), { secondary: true, disabled: !done, testid: 'open-deployed' }),
    button('Reveal Output Folder', () => post({ type: 'open', target: 'outputFolder' }), { secondary: true, disabled: running, testid: 'open-folder' }),
    button('Show Log', () => post({ type: 'open', target: 'log' }), { secondary: true, testid: 'open-log' }),
    button('Compare with baselines', () => post({ type: 'compareBaselines' }), { secondary: true, disabled: !done || view.compare?.status === 'running', testid: 'compare-baselines' }),
  );

  const m = s.model;
  const card = (label: string, value: string, testid: string, raw?: number, note?: string) =>
    el('div', { class: 'card', testid, 'data-value': raw === undefined ? '' : String(raw) }, el('div', { class: 'muted' }, label), el('div', { class: 'big' }, value), note ? el('div', { class: 'muted' }, note) : '');
  const lastEpoch = s.epochs[s.epochs.length - 1];
  replaceChildren(
    document.getElementById('cards')!,
    card('Original MACs', m ? fmtCount(m.macsOriginal) : '–', 'macs-original', m?.macsOriginal),
    card('Target MACs', m ? fmtCount(m.macsTarget) : '–', 'macs-target', m?.macsTarget, m ? fmtPct(m.macsTarget / m.macsOriginal) : undefined),
    card('Current MACs', s.currentMacs !== undefined ? fmtCount(s.currentMacs) : '–', 'macs-current', s.currentMacs, m && s.currentMacs !== undefined ? `${fmtPct(s.currentMacs / m.macsOriginal)} of original` : undefined),
    card('Params', s.currentParams !== undefined ? fmtCount(s.currentParams) : '–', 'params-current', s.currentParams, m ? `of ${fmtCount(m.paramsOriginal)}` : undefined),
    card('Validation accuracy', lastEpoch ? fmtPct(lastEpoch.valAccuracy) : '–', 'val-accuracy', lastEpoch?.valAccuracy),
    card('Epochs done', String(s.epochs.length), 'epochs-done', s.epochs.length),
  );

  const body = document.getElementById('widths-body')!;
  replaceChildren(
    body,
    ...s.groups.map((g) =>
      el('tr', { testid: 'widths-row', 'data-group': g.name, 'data-original': String(g.originalWidth), 'data-searched': String(g.searchedWidth), 'data-min-width': String(g.minWidth ?? 1), 'data-fixed': String(!!g.fixed) },
        el('td', {}, g.name, widthLimitMark(g)),
        el('td', { class: 'num' }, String(g.originalWidth)),
        el('td', { class: 'num' }, String(g.searchedWidth)),
        el('td', { class: 'num' }, fmtPct(g.originalWidth > 0 ? g.searchedWidth / g.originalWidth : 0)))),
  );

  charts?.update(s);
  renderSummary(s);
  renderCompare(document.getElementById('compare')!, view.compare, post);
}

/** Marks a group the width constraints limit: held at full width (--keep), or with a floor above 1 (--min-keep, --round-to). */
function widthLimitMark(g: SearchState['groups'][number]): string {
  if (g.fixed) return ' (kept)';
  return g.minWidth !== undefined && g.minWidth > 1 ? ` (min ${g.minWidth})` : '';
}

function renderSummary(s: SearchState): void {
  const section = document.getElementById('summary')!;
  const r = s.done?.report;
  if (!r) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const row = (label: string, before: string, after: string) => el('tr', {}, el('td', {}, label), el('td', { class: 'num' }, before), el('td', { class: 'num' }, after));
  replaceChildren(
    section,
    el('h2', {}, 'Before / after'),
    el('table', { testid: 'summary-table', 'data-macs-after': String(r.macsAfter), 'data-macs-before': String(r.macsBefore), 'data-target-macs': String(r.targetMacs) },
      el('thead', {}, el('tr', {}, el('th', {}, ''), el('th', { class: 'num' }, 'Before'), el('th', { class: 'num' }, 'After'))),
      el('tbody', {},
        row('MACs', fmtCount(r.macsBefore), `${fmtCount(r.macsAfter)} (${fmtPct(r.macsAfter / r.macsBefore)}; target ${fmtPct(r.targetFraction)})`),
        row('Params', fmtCount(r.paramsBefore), fmtCount(r.paramsAfter)),
        ...(r.latencyBefore !== undefined && r.latencyAfter !== undefined
          ? [row('Latency (batch 1, median)', `${r.latencyBefore.toFixed(2)} ms`, `${r.latencyAfter.toFixed(2)} ms (${fmtChange(r.latencyBefore, r.latencyAfter)})`)]
          : []),
        row('Accuracy', fmtPct(r.accuracyBefore), fmtPct(r.accuracyAfter)),
        ...(r.searchEndMacsFraction !== undefined
          ? [row('Search ended at (before projection)', '', `${fmtPct(r.searchEndMacsFraction)} of MACs; projection moved ${r.projectionMoved ?? 0} channel(s)`)]
          : []),
        row('Reparameterization max |diff|', '', r.reparamMaxAbsDiff.toExponential(2)),
        row('Wall time', '', `${r.wallSeconds.toFixed(0)} s on ${r.backend}`))),
    r.latencyBefore !== undefined && r.latencyAfter !== undefined
      ? el('p', { testid: 'summary-speed' }, `MACs ${fmtChange(r.macsBefore, r.macsAfter)}, latency ${fmtChange(r.latencyBefore, r.latencyAfter)} (${r.backend})`)
      : '',
    el('p', { class: 'muted' }, `Deployed model: ${r.deployedModel}`),
  );
}

/** "-50%": the signed change from before to after. */
function fmtChange(before: number, after: number): string {
  const change = (100 * (after - before)) / before;
  return `${change > 0 ? '+' : ''}${change.toFixed(0)}%`;
}

// ------------------------------------------------------------------------------------------------
// Inspector

function formTable(title: string, form: ModelFormSummary, testid: string, latency?: LatencyReport): HTMLElement {
  const total = form.totalMacs || 1;
  // Measured milliseconds per layer, next to the MACs (the deployed form, after "Measure latency").
  const layerMs = new Map(latency?.perLayer.map((l) => [l.name, l.medianMs]));
  const msCell = (name: string) => (latency ? [el('td', { class: 'num', testid: `${testid}-ms` }, layerMs.has(name) ? layerMs.get(name)!.toFixed(3) : '–')] : []);
  return el('section', {},
    el('h2', {}, title),
    el('table', { testid, 'data-total-macs': String(form.totalMacs), 'data-total-params': String(form.totalParams) },
      el('thead', {}, el('tr', {}, ...['Layer', 'Type', 'In', 'Out', 'Kernel', 'Stride', 'Output', 'MACs', 'Params', 'Share of MACs', ...(latency ? ['ms'] : [])].map((h, i) => el('th', i >= 2 ? { class: 'num' } : {}, h)))),
      el('tbody', {},
        ...form.layers.map((l) =>
          el('tr', { testid: `${testid}-row` },
            el('td', {}, l.name),
            el('td', {}, l.type),
            el('td', { class: 'num' }, String(l.inChannels)),
            el('td', { class: 'num' }, String(l.outChannels)),
            el('td', { class: 'num' }, l.kernelSize > 0 ? `${l.kernelSize}×${l.kernelSize}` : '–'),
            el('td', { class: 'num' }, String(l.stride)),
            el('td', { class: 'num' }, `${l.outHeight}×${l.outWidth}`),
            el('td', { class: 'num' }, fmtCount(l.macs)),
            el('td', { class: 'num' }, fmtCount(l.params)),
            el('td', { class: 'num' }, el('span', { class: 'share' }, el('span', { class: 'share-bar', 'data-share': String(l.macs / total) }), fmtPct(l.macs / total))),
            ...msCell(l.name)))),
      el('tfoot', {}, el('tr', {}, el('td', {}, 'Total'), el('td', {}), el('td', {}), el('td', {}), el('td', {}), el('td', {}), el('td', {}),
        el('td', { class: 'num', testid: `${testid}-total-macs` }, fmtCount(form.totalMacs)),
        el('td', { class: 'num', testid: `${testid}-total-params` }, fmtCount(form.totalParams)),
        el('td', { class: 'num' }, '100%'),
        ...(latency ? [el('td', { class: 'num' }, latency.medianMs.toFixed(3))] : [])))));
}

function renderInspector(msg: InspectorInitMessage): void {
  const header = el('header', {}, el('h1', {}, 'Model inspector'), el('span', { class: 'muted' }, msg.file));
  if (msg.state.kind === 'loading') {
    replaceChildren(app, header, el('vscode-progress-bar', {}), el('p', { class: 'muted', testid: 'inspector-loading' }, 'Inspecting the model…'));
    return;
  }
  if (msg.state.kind === 'error') {
    replaceChildren(app, header,
      el('div', { class: 'error', role: 'alert', testid: 'inspector-error' }, el('strong', {}, 'This file cannot be inspected: '), msg.state.message),
      el('div', { class: 'actions' }, button('Show Log', () => post({ type: 'open', target: 'log' }), { secondary: true, testid: 'open-log' })));
    return;
  }
  const r: ModelReport = msg.state.report;
  const training = r.trainingForm;
  const deployed = r.deployedForm;
  replaceChildren(
    app,
    header,
    el('div', { class: 'actions' },
      button('Prune with PaS', () => post({ type: 'startSearch' }), { disabled: !msg.canSearch, testid: 'start-search' }),
      button('Reparameterize', () => post({ type: 'reparameterize' }), { secondary: true, disabled: !msg.canSearch, testid: 'reparameterize' }),
      button('Measure latency', () => post({ type: 'measureLatency' }), { secondary: true, disabled: !msg.canSearch, testid: 'measure-latency' })),
    msg.canSearch ? '' : el('p', { class: 'muted' }, 'Restricted Mode: trust this workspace to prune or reparameterize.'),
    el('section', { class: 'cards' },
      el('div', { class: 'card', testid: 'inspector-input' }, el('div', { class: 'muted' }, 'Input'), el('div', { class: 'big' }, r.inputShape.join('×')), el('div', { class: 'muted' }, `${r.numClasses} classes`)),
      el('div', { class: 'card', testid: 'inspector-training-macs', 'data-value': String(training.totalMacs) }, el('div', { class: 'muted' }, 'Training-time MACs'), el('div', { class: 'big' }, fmtCount(training.totalMacs)), el('div', { class: 'muted' }, `${fmtCount(training.totalParams)} params`)),
      el('div', { class: 'card', testid: 'inspector-deployed-macs', 'data-value': String(deployed.totalMacs) }, el('div', { class: 'muted' }, 'Deployed MACs'), el('div', { class: 'big' }, fmtCount(deployed.totalMacs)), el('div', { class: 'muted' }, `${fmtCount(deployed.totalParams)} params`)),
      el('div', { class: 'card', testid: 'inspector-groups', 'data-value': String(r.prunableGroups.length) }, el('div', { class: 'muted' }, 'Prunable groups'), el('div', { class: 'big' }, String(r.prunableGroups.length)), el('div', { class: 'muted' }, r.prunableGroups.map((g) => `${g.name}: ${g.width}`).join(', ')))),
    ...preflightSections(r),
    formTable('Training-time form', training, 'training-table'),
    formTable('Deployed form (after reparameterization)', deployed, 'deployed-table', r.latency),
    r.latency
      ? el('p', { class: 'muted', testid: 'inspector-latency', 'data-value': String(r.latency.medianMs) },
        `Latency of the deployed form: ${r.latency.medianMs.toFixed(3)} ms per pass (${r.latency.backend}, batch ${r.latency.batch}, median of ${r.latency.runs} runs); the ms column times each layer on its own.`)
      : '',
  );
  // widths of the share bars are set through CSSOM (allowed by the CSP, unlike style attributes)
  for (const bar of Array.from(app.querySelectorAll<HTMLElement>('.share-bar'))) bar.style.width = `${Math.round(100 * Number(bar.dataset.share))}%`;
}

// ------------------------------------------------------------------------------------------------

window.addEventListener('message', (e: MessageEvent<HostToWebviewMessage>) => {
  const msg = e.data;
  if (typeof msg !== 'object' || msg === null) return;
  switch (msg.type) {
    case 'init':
      if (msg.protocol !== WEBVIEW_PROTOCOL_VERSION) {
        replaceChildren(app, el('div', { class: 'error' }, 'This view is out of date: reload the window.'));
        return;
      }
      if (msg.view === 'setup') {
        search = undefined;
        renderSetup(app, msg, post);
      } else if (msg.view === 'search') {
        search = { init: msg, state: foldSearchEvents(msg.history, initialSearchState()), status: msg.status, failure: msg.failure, compare: msg.compare };
        buildSearchSkeleton(msg);
        renderSearch(search);
      } else {
        renderInspector(msg);
      }
      break;
    case 'event':
      if (!search) return;
      for (const event of msg.events) search.state = applySearchEvent(search.state, event);
      scheduleRender();
      break;
    case 'compare':
      if (!search) return;
      search.compare = msg.state;
      scheduleRender();
      break;
    case 'status':
      if (!search) return;
      search.status = msg.status;
      search.failure = msg.failure;
      scheduleRender();
      break;
  }
});

post({ type: 'ready' });
