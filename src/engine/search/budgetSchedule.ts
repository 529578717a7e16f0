/**
 * Drives the PaS budget loss during the search so that the masks themselves, not the projection
 * afterwards, reach the MACs target (docs/search.md has the measurements behind each choice).
 *
 * Two problems with a fixed `alpha * ((MACs - target) / MACs_full)^2` over a short search:
 * - Overshoot: from the full model the loss pulls every latent of a layer down at the same rate;
 *   with momentum 0.9 they are still falling when the MACs pass the target, and the search swings
 *   (measured on the demo: 39% -> 60% -> 52% of the MACs for a 50% target).
 * - Scale: the pull per latent is the layer's MACs per channel over the model's MACs, so in a
 *   large model with few search steps (MobileNetV2, one epoch) the latents barely move.
 *
 * Hence:
 * - The loss's target moves from the full model down to the target over the first
 *   `WARMUP_SHARE` of the search steps (gradual pruning, Zhu & Gupta 2017): the masks track a
 *   slowly moving target and arrive without a swing; the rest of the search settles the choice.
 * - A gain on alpha that adapts like Rprop's step size: it grows while the masks' MACs stay on the
 *   same side of the scheduled target by more than `TOLERANCE` (the pull is too weak for this
 *   model), halves when they cross it (the pull overshot), and relaxes towards 1 inside the
 *   tolerance. The
 *   growth per step comes from the search length, so a short search can still double the pull
 *   `DOUBLINGS` times.
 */
export const WARMUP_SHARE = 0.5;
/** Tolerance around the scheduled target, as a fraction of the final target's MACs. */
export const TOLERANCE = 0.02;
/** How many times the gain can double over the search (growth per step = 2^(DOUBLINGS / steps)). */
export const DOUBLINGS = 20;
const MAX_GAIN = 2 ** 20;

/** Time constant of the error average, as a share of the search steps. */
const SMOOTHING_SHARE = 0.03;

export interface BudgetScheduleState {
  step: number;
  gain: number;
  lastSign: number;
  /** Moving average of (masks' MACs - scheduled target) / full MACs. */
  averageError: number;
}

export class BudgetSchedule {
  private state: BudgetScheduleState;
  private readonly growth: number;
  private readonly smoothing: number;

  constructor(
    readonly totalSteps: number,
    readonly targetFraction: number,
    state?: BudgetScheduleState,
  ) {
    this.state = state ? { ...state } : { step: 0, gain: 1, lastSign: 0, averageError: 0 };
    this.growth = 2 ** (DOUBLINGS / Math.max(1, totalSteps));
    this.smoothing = Math.min(1, 1 / Math.max(1, SMOOTHING_SHARE * totalSteps));
  }

  /** The fraction of the full MACs the loss pulls onto at the current step. */
  scheduledFraction(): number {
    const warmupSteps = Math.max(1, Math.round(WARMUP_SHARE * this.totalSteps));
    const progress = Math.min(1, this.state.step / warmupSteps);
    return 1 - progress * (1 - this.targetFraction);
  }

  /** The multiplier on alpha at the current step. */
  get gain(): number {
    return this.state.gain;
  }

  /**
   * After a step: the masks' MACs as a fraction of the full MACs. The error is averaged over a
   * few steps first: one channel of a wide, high-resolution layer can be several percent of the
   * MACs, and the raw error would flip sign on every such channel.
   */
  observe(macsFraction: number): void {
    const s = this.state;
    s.averageError += this.smoothing * (macsFraction - this.scheduledFraction() - s.averageError);
    const sign = Math.abs(s.averageError) <= TOLERANCE * this.targetFraction ? 0 : Math.sign(s.averageError);
    if (sign !== 0 && s.lastSign !== 0 && sign !== s.lastSign) {
      // The masks crossed the scheduled target: the pull overshot.
      s.gain = Math.max(1, s.gain / 2);
    } else if (sign !== 0) {
      // Still on one side: the pull is too weak for this model and this search length.
      s.gain = Math.min(MAX_GAIN, s.gain * this.growth);
    } else {
      // On target: let the gain relax towards 1, so that the cross-entropy, not an inflated
      // budget pull, decides which channels of a layer stay.
      s.gain = Math.max(1, s.gain / this.growth);
    }
    if (sign !== 0) s.lastSign = sign;
    s.step++;
  }

  snapshot(): BudgetScheduleState {
    return { ...this.state };
  }
}
