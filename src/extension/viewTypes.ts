/** The webview view types this extension contributes (package.json names them too). */

/** The read-only model inspector (custom editor, `priority: "option"`). */
export const MODEL_INSPECTOR_VIEW_TYPE = 'pas.modelInspector';

/** The search panel: the run-setup form, then the live view of that run. */
export const SEARCH_PANEL_VIEW_TYPE = 'pas.searchPanel';
