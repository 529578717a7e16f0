/**
 * The search panel: a WebviewPanel showing one SearchSession.
 *
 * Handshake, snapshot, deltas: on `ready` the panel gets `init` with the session's whole
 * (compacted) history, then throttled `event` deltas. Hiding the panel unloads its page (no
 * retainContextWhenHidden); when shown again the page posts `ready` again and gets a new snapshot.
 * Every message from the page is validated; unknown ones are logged and ignored.
 */
import * as vscode from 'vscode';
import { WEBVIEW_PROTOCOL_VERSION, type HostToWebviewMessage, type OpenTarget, type WebviewToHostMessage } from '../shared/webviewProtocol';
import { DeltaThrottle } from './core/searchHistory';
import { validateWebviewMessage } from './core/webviewMessages';
import type { SearchSession } from './searchSession';
import type { CompareController } from './compareController';
import { Disposable } from './dispose';
import { SEARCH_PANEL_VIEW_TYPE } from './viewTypes';
import { renderWebviewHtml, webviewOptions } from './webviewHtml';

export interface SearchPanelActions {
  reparameterize(session: SearchSession): void;
  open(session: SearchSession, target: OpenTarget): void;
  log(message: string): void;
  /** "Compare with baselines"; absent: the panel ignores those messages. */
  compare?: Pick<CompareController, 'stateOf' | 'onDidChange' | 'start' | 'cancel'>;
}

export class SearchPanel extends Disposable {
  static readonly viewType = SEARCH_PANEL_VIEW_TYPE;
  private readonly throttle: DeltaThrottle;
  /** Deltas are only sent after the page's `ready` (before that it would drop them). */
  private ready = false;
  private readonly onDisposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.onDisposeEmitter.event;

  static create(extensionUri: vscode.Uri, session: SearchSession, actions: SearchPanelActions): SearchPanel {
    const panel = vscode.window.createWebviewPanel(SearchPanel.viewType, `PaS: ${session.info.label}`, vscode.ViewColumn.Active, {
      ...webviewOptions(extensionUri),
      enableFindWidget: true,
    });
    return new SearchPanel(panel, extensionUri, session, actions);
  }

  /** Shows `session` in a panel that already exists (the setup form's): its page reloads into the live view. */
  static adopt(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, session: SearchSession, actions: SearchPanelActions): SearchPanel {
    panel.title = `PaS: ${session.info.label}`;
    return new SearchPanel(panel, extensionUri, session, actions);
  }

  private constructor(readonly panel: vscode.WebviewPanel, extensionUri: vscode.Uri, readonly session: SearchSession, private readonly actions: SearchPanelActions) {
    super();
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.png');
    panel.webview.html = renderWebviewHtml(panel.webview, extensionUri, 'search', panel.title);
    this.throttle = this._register(new DeltaThrottle((events) => this.post({ type: 'event', events }), 150));
    [
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((raw) => this.onMessage(raw)),
      panel.onDidChangeViewState(() => {
        // A hidden webview's page is unloaded: wait for its next `ready`.
        if (!panel.visible) {
          this.ready = false;
          this.throttle.discard();
        }
      }),
      session.onEvent((event) => {
        if (this.ready) this.throttle.push(event);
      }),
      session.onStatus((status) => {
        if (!this.ready) return;
        this.throttle.flushNow();
        this.post({ type: 'status', status, failure: session.failure });
      }),
    ].forEach((d) => this._register(d));
    if (actions.compare) {
      this._register(actions.compare.onDidChange(({ session: s, state }) => {
        if (s === session && this.ready) this.post({ type: 'compare', state });
      }));
    }
  }

  reveal(): void {
    this.panel.reveal();
  }

  private onMessage(raw: unknown): void {
    const v = validateWebviewMessage(raw);
    if (!v.ok) {
      this.actions.log(`search panel: ignored message (${v.reason})`);
      return;
    }
    const message: WebviewToHostMessage = v.message;
    switch (message.type) {
      case 'ready':
        this.ready = true;
        this.throttle.discard();
        this.post({
          type: 'init',
          view: 'search',
          protocol: WEBVIEW_PROTOCOL_VERSION,
          run: this.session.info,
          status: this.session.status,
          failure: this.session.failure,
          history: this.session.history.snapshot(),
          compare: this.actions.compare?.stateOf(this.session),
        });
        break;
      case 'cancel':
        this.session.cancel();
        break;
      case 'reparameterize':
        this.actions.reparameterize(this.session);
        break;
      case 'open':
        this.actions.open(this.session, message.target);
        break;
      case 'compareBaselines':
        void this.actions.compare?.start(this.session);
        break;
      case 'cancelCompare':
        this.actions.compare?.cancel(this.session);
        break;
      default:
        this.actions.log(`search panel: "${message.type}" is not a live-view message; ignored`);
        break;
      case 'setUpNativeBackend':
        void vscode.commands.executeCommand('pas.setUpNativeBackend');
        break;
    }
  }

  private post(message: HostToWebviewMessage): void {
    if (!this.isDisposed) void this.panel.webview.postMessage(message);
  }

  dispose(): void {
    if (this.isDisposed) return;
    super.dispose();
    this.panel.dispose();
    this.onDisposeEmitter.fire();
    this.onDisposeEmitter.dispose();
  }
}
