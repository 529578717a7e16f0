/**
 * The search panel's backend line: which TensorFlow.js backend the worker runs on (from the
 * `start` event), why each faster one was skipped (its tooltip and text), and, on wasm or cpu, a
 * button that runs "PaS: Set Up Native Backend".
 */
import type { StartEvent } from '../src/shared/workerProtocol';
import { el, replaceChildren } from './dom';

export function renderBackendInfo(container: HTMLElement, start: StartEvent | undefined, setUp: () => void): void {
  const backend = start?.backend;
  container.dataset.backend = backend ?? '';
  if (!backend) {
    replaceChildren(container);
    return;
  }
  const label = el('span', { testid: 'backend-name', title: start?.backendNote ? `Backend notes: ${start.backendNote}` : '' }, `backend: ${backend}`);
  const parts: Array<HTMLElement> = [label];
  if (backend === 'wasm' || backend === 'cpu') {
    const b = el('vscode-button', { testid: 'set-up-native', secondary: '' }, 'Set Up Native Backend');
    b.addEventListener('click', setUp);
    parts.push(b);
  }
  // A native package that is simply not installed is what the button is for; a failure to load
  // (a broken install, a missing CUDA library, another version) is worth reading in full.
  const failures = (start?.backendNote ?? '').split('; ').filter((reason) => reason !== '' && !/not installed/.test(reason));
  if (failures.length > 0) parts.push(el('div', { class: 'muted', testid: 'backend-note' }, `Backend notes: ${failures.join('; ')}`));
  replaceChildren(container, ...parts);
}
