/**
 * The run-setup form ("Prune with PaS"): the host's snapshot (`init` with view 'setup') becomes a
 * form of @vscode-elements controls; every edit is validated with the host's own function
 * (src/shared/runSetup.ts), the budget preview is recomputed from the model's MACs formula
 * (src/engine/budgetPreview.ts, pure arithmetic), and the form state is posted to the host, which
 * keeps it. Start posts the state; the host validates it again and turns the panel into the run.
 */
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { lowestKeptCount, parseRoundTo, previewBudget, roundingStep } from '../src/engine/budgetPreview';
import { formatCount, formatPercent } from '../src/shared/format';
import { PREPROCESSING_OPTIONS, validateRunSetup, type DataChoice, type RunSetup, type SetupField } from '../src/shared/runSetup';
import type { SetupInitMessage, WebviewToHostMessage } from '../src/shared/webviewProtocol';
import { el, replaceChildren } from './dom';

type Post = (message: WebviewToHostMessage) => void;

/** A labelled text field whose value is parsed as a number ('' -> null when `optional`), or read as text. */
function numberField(label: string, testid: string, value: number | string | null, hint: string, onInput: () => void) {
  const field = el('vscode-textfield', { testid, value: value === null ? '' : String(value) }) as HTMLElement & { value: string; invalid: boolean };
  field.addEventListener('input', onInput);
  const error = el('div', { class: 'field-error', testid: `${testid}-error` });
  const box = el('div', { class: 'field' }, el('label', {}, label), field, el('div', { class: 'muted small' }, hint), error);
  return {
    box,
    number: (optional = false): number | null => {
      const t = field.value.trim();
      if (t === '' && optional) return null;
      // '' and text become NaN, which the validation names (posted, NaN becomes null: also refused)
      return /^-?\d*\.?\d+(e-?\d+)?$/i.test(t) ? Number(t) : Number.NaN;
    },
    text: (): string => field.value.trim(),
    showError: (message: string | undefined) => {
      field.invalid = !!message;
      error.textContent = message ?? '';
    },
  };
}

export function renderSetup(app: HTMLElement, msg: SetupInitMessage, post: Post): void {
  const s = msg.setup;
  const model = msg.inspection.kind === 'ready' ? msg.inspection.model : undefined;
  let data: DataChoice = s.data;
  const keep = new Set(s.keep);

  const fields = {
    targetFraction: numberField('MACs target (fraction kept)', 'setup-target', s.targetFraction, 'e.g. 0.5 keeps half of the multiply-adds', update),
    pretrainEpochs: numberField('Pretrain epochs', 'setup-pretrain-epochs', s.pretrainEpochs, 'empty: 6 for builtins, 0 for model files', update),
    searchEpochs: numberField('Search epochs', 'setup-search-epochs', s.searchEpochs, 'width search under the MACs budget', update),
    finetuneEpochs: numberField('Fine-tune epochs', 'setup-finetune-epochs', s.finetuneEpochs, 'widths frozen', update),
    batchSize: numberField('Batch size', 'setup-batch-size', s.batchSize, 'the optimization batch', update),
    minKeep: numberField('Min keep (fraction of each layer)', 'setup-min-keep', s.minKeep, 'no layer below this share of its channels (never below 1)', update),
    roundTo: numberField('Round widths to', 'setup-round-to', s.roundTo, 'auto: multiples of 8 in layers of 64+ channels (what XNNPACK computes anyway), any count below; N: multiples of N; 1: any count', update),
  };

  const dataLabel = el('span', { testid: 'setup-data-value' });
  const dataSelect = el('vscode-single-select', { testid: 'setup-data-kind' },
    el('vscode-option', { value: 'sample' }, 'Sample data (bundled)'),
    el('vscode-option', { value: 'idx' }, 'IDX folder (MNIST format)…'),
    el('vscode-option', { value: 'folder' }, 'Image folder…')) as HTMLElement & { value: string };
  dataSelect.addEventListener('change', () => {
    const kind = dataSelect.value;
    if (kind === 'sample') {
      data = { kind: 'sample' };
      update();
    } else if (kind === 'idx' || kind === 'folder') {
      post({ type: 'browseData', kind });
    }
  });
  const browse = el('vscode-button', { testid: 'setup-browse', secondary: '' }, 'Browse…');
  browse.addEventListener('click', () => post({ type: 'browseData', kind: data.kind === 'idx' ? 'idx' : 'folder' }));
  const dataError = el('div', { class: 'field-error', testid: 'setup-data-error' });

  const preprocessing = el('vscode-single-select', { testid: 'setup-preprocessing' },
    ...PREPROCESSING_OPTIONS.map((o) => el('vscode-option', { value: o.preset }, o.label))) as HTMLElement & { value: string };
  preprocessing.addEventListener('change', update);
  const distill = el('vscode-checkbox', { testid: 'setup-distill', label: 'Distill from the original model (no labels needed; images-only folders use it always)' }) as HTMLElement & { checked: boolean };
  distill.checked = s.distill;
  distill.addEventListener('change', update);

  const groupBody = el('tbody', { testid: 'setup-groups' });
  const preview = el('section', { class: 'cards', testid: 'setup-preview' });
  const startError = el('div', { class: 'error', role: 'alert', testid: 'setup-error', hidden: '' });
  const start = el('vscode-button', { testid: 'setup-start' }, 'Start search');
  start.addEventListener('click', () => {
    if (start.hasAttribute('disabled')) return;
    const candidate = read();
    start.setAttribute('disabled', '');
    post({ type: 'startRun', setup: candidate });
  });

  function read(): Record<string, unknown> {
    return {
      data,
      targetFraction: fields.targetFraction.number(),
      pretrainEpochs: fields.pretrainEpochs.number(true),
      searchEpochs: fields.searchEpochs.number(),
      finetuneEpochs: fields.finetuneEpochs.number(),
      batchSize: fields.batchSize.number(),
      minKeep: fields.minKeep.number(),
      // 'auto' or a whole number; anything else NaN, which the validation names
      roundTo: parseRoundTo(fields.roundTo.text()) ?? Number.NaN,
      keep: [...keep],
      preprocessing: preprocessing.value || s.preprocessing,
      distill: distill.checked,
    };
  }

  function renderGroups(setup: RunSetup | undefined): void {
    if (!model) {
      replaceChildren(groupBody, el('tr', {}, el('td', { colspan: '4', class: 'muted' }, msg.inspection.kind === 'error' ? `Cannot inspect the model: ${msg.inspection.message}` : 'Inspecting the model…')));
      return;
    }
    replaceChildren(groupBody, ...model.groups.map((g) => {
      const box = el('vscode-checkbox', { testid: 'setup-keep', 'data-group': g.name }) as HTMLElement & { checked: boolean };
      box.checked = keep.has(g.name);
      box.addEventListener('change', () => {
        if (box.checked) keep.add(g.name);
        else keep.delete(g.name);
        update();
      });
      const lowest = setup ? lowestKeptCount(g.name, g.width, setup) : undefined;
      // Under --round-to auto some groups round and some do not: say which.
      const step = setup ? roundingStep(g.width, setup.roundTo) : 1;
      return el('tr', { testid: 'setup-group-row', 'data-group': g.name },
        el('td', {}, box),
        el('td', {}, g.name, el('div', { class: 'muted small' }, g.layers.join(', '))),
        el('td', { class: 'num' }, String(g.width)),
        el('td', { class: 'num', testid: 'setup-group-lowest' }, lowest === undefined ? '–' : lowest === g.width ? `${lowest} (fixed)` : step > 1 ? `${lowest} (steps of ${step})` : String(lowest)));
    }));
  }

  function renderPreview(setup: RunSetup | undefined): boolean {
    const card = (label: string, value: string, testid: string, raw?: number, note?: string) =>
      el('div', { class: 'card', testid, 'data-value': raw === undefined ? '' : String(raw) }, el('div', { class: 'muted' }, label), el('div', { class: 'big' }, value), note ? el('div', { class: 'muted' }, note) : '');
    if (!model?.macsFormula || !setup) {
      replaceChildren(preview, card('Deployed MACs', model ? formatCount(model.deployedMacs) : '–', 'setup-full-macs', model?.deployedMacs));
      return true;
    }
    const p = previewBudget(model.macsFormula, model.groups, setup, setup.targetFraction);
    replaceChildren(preview,
      card('Deployed MACs', formatCount(p.fullMacs), 'setup-full-macs', p.fullMacs),
      card('Target MACs', formatCount(p.targetMacs), 'setup-target-macs', p.targetMacs, formatPercent(setup.targetFraction)),
      card('Lowest reachable', formatPercent(p.lowestFraction), 'setup-lowest-fraction', p.lowestFraction, `${formatCount(p.lowestMacs)} MACs under the constraints`));
    if (!p.reachable) fields.targetFraction.showError(`Unreachable: the constraints keep at least ${formatPercent(p.lowestFraction)} of the MACs.`);
    return p.reachable;
  }

  function update(): void {
    const candidate = read();
    const checked = validateRunSetup(candidate, model?.groups.map((g) => g.name));
    const errors: Partial<Record<SetupField, string>> = checked.ok ? {} : checked.errors;
    for (const [name, field] of Object.entries(fields)) field.showError(errors[name as SetupField]);
    dataError.textContent = errors.data ?? errors.keep ?? errors.preprocessing ?? '';
    dataLabel.textContent = data.kind === 'sample' ? 'the bundled sample' : data.dir;
    browse.hidden = data.kind === 'sample';
    renderGroups(checked.ok ? checked.setup : undefined);
    const reachable = renderPreview(checked.ok ? checked.setup : undefined);
    const canStart = checked.ok && reachable && msg.inspection.kind !== 'loading';
    if (canStart) start.removeAttribute('disabled');
    else start.setAttribute('disabled', '');
    post({ type: 'setupChanged', setup: candidate });
  }

  replaceChildren(app,
    el('header', {}, el('h1', {}, `PaS search — ${msg.label}`), el('span', { class: 'muted' }, msg.model)),
    el('p', { class: 'muted' }, 'Set up the run, then Start: this panel turns into its live view.'),
    el('section', { class: 'form-grid' },
      el('div', { class: 'field' }, el('label', {}, 'Data'), dataSelect, el('div', { class: 'muted small' }, dataLabel, ' ', browse), dataError),
      fields.targetFraction.box,
      fields.pretrainEpochs.box, fields.searchEpochs.box, fields.finetuneEpochs.box, fields.batchSize.box,
      el('div', { class: 'field' }, el('label', {}, 'Preprocessing'), preprocessing, el('div', { class: 'muted small' }, 'the scale the model was trained on'))),
    el('div', { class: 'field' }, distill),
    el('h2', {}, 'Width constraints'),
    el('section', { class: 'form-grid' }, fields.minKeep.box, fields.roundTo.box),
    el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Keep'), el('th', {}, 'Prunable group'), el('th', { class: 'num' }, 'Width'), el('th', { class: 'num' }, 'Lowest kept'))),
      groupBody),
    el('h2', {}, 'Budget'),
    preview,
    startError,
    el('div', { class: 'actions' }, start));

  // selects take their value once their options are in the document
  dataSelect.value = data.kind;
  preprocessing.value = s.preprocessing;
  const hostErrors = Object.entries(msg.errors ?? {});
  update();
  if (hostErrors.length > 0) {
    startError.hidden = false;
    startError.textContent = hostErrors.map(([field, message]) => `${field}: ${message}`).join('\n');
  }
}
