/**
 * The search panel's state as a pure fold over worker events.
 *
 * Both the live panel (applying deltas as they arrive) and a re-shown panel (applying the host's
 * snapshot) run the same fold, so "what a webview shows" depends only on the event sequence. No
 * DOM access here: the unit tests import this module in Node.
 */
import type { BatchEvent, CancelledEvent, DoneEvent, ErrorEvent, GroupWidth, ModelEvent, Phase, StartEvent, WorkerEvent } from '../src/shared/workerProtocol';

export interface EpochPoint {
  phase: Phase;
  epoch: number;
  loss: number;
  accuracy: number;
  valAccuracy: number;
  macs: number;
  params: number;
}

export interface SearchState {
  start?: StartEvent;
  model?: ModelEvent;
  phase?: { phase: Phase; epochs: number };
  /** Only the latest batch: older ones are superseded (the host drops them from its history). */
  lastBatch?: BatchEvent;
  epochs: EpochPoint[];
  /** Current width per prunable group, in `model.groups` order. */
  groups: GroupWidth[];
  currentMacs?: number;
  currentParams?: number;
  checkpoints: number;
  lastCheckpoint?: string;
  done?: DoneEvent;
  cancelled?: CancelledEvent;
  error?: ErrorEvent;
}

export function initialSearchState(): SearchState {
  return { epochs: [], groups: [], checkpoints: 0 };
}

/** Applies one event; returns a new state object (inputs are not mutated). */
export function applySearchEvent(state: SearchState, event: WorkerEvent): SearchState {
  switch (event.type) {
    case 'start':
      return { ...state, start: event };
    case 'model':
      return {
        ...state,
        model: event,
        groups: event.groups.map((g) => ({ ...g })),
        currentMacs: state.currentMacs ?? event.macsOriginal,
        currentParams: state.currentParams ?? event.paramsOriginal,
      };
    case 'phase':
      return { ...state, phase: { phase: event.phase, epochs: event.epochs } };
    case 'batch':
      // macs 0: not measured in this phase (pretraining has no masks yet)
      return { ...state, lastBatch: event, currentMacs: event.macs > 0 ? event.macs : state.currentMacs };
    case 'epoch': {
      const point: EpochPoint = {
        phase: event.phase,
        epoch: event.epoch,
        loss: event.loss,
        accuracy: event.accuracy,
        valAccuracy: event.valAccuracy,
        macs: event.macs,
        params: event.params,
      };
      const groups = state.groups.map((g, i) => (i < event.widths.length ? { ...g, searchedWidth: event.widths[i] } : g));
      // macs 0: not measured in this phase (pretraining has no masks); params are always measured
      return { ...state, epochs: [...state.epochs, point], groups, currentMacs: event.macs > 0 ? event.macs : state.currentMacs, currentParams: event.params };
    }
    case 'checkpoint':
      return { ...state, checkpoints: state.checkpoints + 1, lastCheckpoint: event.path };
    case 'done': {
      const report = event.report;
      if (!report) return { ...state, done: event };
      const byName = new Map(report.layers.map((l) => [l.name, l]));
      const groups = state.groups.length > 0 ? state.groups.map((g) => ({ ...g, searchedWidth: byName.get(g.name)?.searchedWidth ?? g.searchedWidth })) : report.layers.map((l) => ({ ...l }));
      return { ...state, done: event, groups, currentMacs: report.macsAfter, currentParams: report.paramsAfter };
    }
    case 'cancelled':
      return { ...state, cancelled: event };
    case 'error':
      return { ...state, error: event };
    default:
      // inspect / reparam / log events do not change the search panel
      return state;
  }
}

export function foldSearchEvents(events: readonly WorkerEvent[], from: SearchState = initialSearchState()): SearchState {
  return events.reduce(applySearchEvent, from);
}
