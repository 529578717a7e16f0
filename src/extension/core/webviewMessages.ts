/**
 * Validation of messages coming from a webview. A webview is a web page: treat what it posts as
 * untrusted input, accept only the known shapes, and let the caller log the rest.
 */
import { OPEN_TARGETS, type OpenTarget, type WebviewToHostMessage } from '../../shared/webviewProtocol';

export type Validation = { ok: true; message: WebviewToHostMessage } | { ok: false; reason: string };

export function validateWebviewMessage(raw: unknown): Validation {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'not an object' };
  const m = raw as Record<string, unknown>;
  const keys = Object.keys(m);
  const only = (...allowed: string[]) => keys.every((k) => allowed.includes(k));
  switch (m.type) {
    case 'ready':
    case 'cancel':
    case 'reparameterize':
    case 'startSearch':
    case 'setUpNativeBackend':
    case 'measureLatency':
    case 'compareBaselines':
    case 'cancelCompare':
      if (!only('type')) return { ok: false, reason: `unexpected fields in "${m.type}"` };
      return { ok: true, message: { type: m.type } };
    case 'open':
      if (!only('type', 'target')) return { ok: false, reason: 'unexpected fields in "open"' };
      if (typeof m.target !== 'string' || !OPEN_TARGETS.includes(m.target as OpenTarget)) {
        return { ok: false, reason: `unknown open target ${JSON.stringify(m.target)}` };
      }
      return { ok: true, message: { type: 'open', target: m.target as OpenTarget } };
    case 'setupChanged':
    case 'startRun':
      // The form state itself is checked by validateRunSetup where it is used.
      if (!only('type', 'setup')) return { ok: false, reason: `unexpected fields in "${m.type}"` };
      if (typeof m.setup !== 'object' || m.setup === null || Array.isArray(m.setup)) return { ok: false, reason: `"${m.type}" without a form state` };
      return { ok: true, message: { type: m.type, setup: m.setup } };
    case 'browseData':
      if (!only('type', 'kind')) return { ok: false, reason: 'unexpected fields in "browseData"' };
      if (m.kind !== 'idx' && m.kind !== 'folder') return { ok: false, reason: `unknown data kind ${JSON.stringify(m.kind)}` };
      return { ok: true, message: { type: 'browseData', kind: m.kind } };
    default:
      return { ok: false, reason: `unknown message type ${JSON.stringify(m.type)}` };
  }
}
