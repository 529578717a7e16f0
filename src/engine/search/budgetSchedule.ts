import * as tf from '@tensorflow/tfjs';
import { KEEP_THRESHOLD } from '../layers/dbc';

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
 *   tolerance. The growth per step comes from the search length, so a short search can still
 *   double the pull `DOUBLINGS` times.
 * - Settling once the target holds: at equilibrium the marginal latents sit at the threshold,
 *   held there between the budget's pull and the cross-entropy's, and flip every step (the masks
 *   jittered by +-5 points, and where the search stopped was a sample of that). So in the hold
 *   phase the cross-entropy's share of the latents' step anneals, a switched latent is put past
 *   the threshold (hysteresis), and after the masks' first crossing of the held target the gain no
 *   longer grows (regrowing it between crossings kept short searches swinging by +-10 points).
 */
export const WARMUP_SHARE = 0.5;
/**
 * Hysteresis of a switch in the hold phase: a latent whose channel switched on (off) is put at
 * least this far above (below) the threshold, so that switching back takes a pull sustained over
 * several steps, not one step's noise.
 */
export const SWITCH_MARGIN = 0.05;
/**
 * In the hold phase the latents' step anneals (cosine) from 1 to this fraction at the last step,
 * for the cross-entropy and weight-decay part of their update; the budget's part keeps its size
 * (its weight is divided by the same factor): the choice of channels settles while the budget
 * keeps its restoring pull. Alone it does not stop the flips (a latent held at the threshold
 * crosses it with any step, however small); with SWITCH_MARGIN it does (docs/search.md,
 * "Settling").
 */
export const FINAL_LATENT_STEP = 0.05;
/**
 * Below this many optimizer steps the search cannot be relied on to bring the masks onto the
 * budget by itself, and the projection does part of the pruning: the job says so. Measured
 * (docs/search.md): 54-60-step searches ended anywhere from 20% to 64% for a 50% target
 * (seed to seed), 120-step ones within 5.4%, the 228-step demo within 3%; a 2-step search, such
 * as MobileNetV2 on 72 images in batches of 64, leaves the masks where they started.
 */
export const FEW_SEARCH_STEPS = 100;

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
  /** The masks have crossed the target once the target stopped moving: the gain only falls from then on. */
  crossedInHold?: boolean;
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

  private warmupSteps(): number {
    return Math.max(1, Math.round(WARMUP_SHARE * this.totalSteps));
  }

  /** The fraction of the full MACs the loss pulls onto at the current step. */
  scheduledFraction(): number {
    const progress = Math.min(1, this.state.step / this.warmupSteps());
    return 1 - progress * (1 - this.targetFraction);
  }

  /** The adaptive multiplier on alpha at the current step. */
  get gain(): number {
    return this.state.gain;
  }

  /**
   * The factor on the latents' step at the current step: 1 while the target moves, then a cosine
   * down to FINAL_LATENT_STEP at the last search step (a step-based schedule, so a resumed search
   * continues it exactly).
   */
  latentStepScale(): number {
    const warmupSteps = this.warmupSteps();
    const holdSteps = this.totalSteps - warmupSteps;
    if (holdSteps <= 1 || this.state.step < warmupSteps) return 1;
    const progress = Math.min(1, (this.state.step - warmupSteps) / (holdSteps - 1));
    return FINAL_LATENT_STEP + (1 - FINAL_LATENT_STEP) * 0.5 * (1 + Math.cos(Math.PI * progress));
  }

  /**
   * The multiplier on alpha in the loss: the gain, divided by the latent step's factor, so that
   * annealing the latents' step quiets the cross-entropy's pull on them but not the budget's.
   */
  /**
   * How far past the threshold a latent is put when its channel switches during the hold phase
   * (0 while the target moves): hysteresis that ends the chattering of latents held at the
   * threshold between the budget's pull and the cross-entropy's.
   */
  switchMargin(): number {
    return this.state.step < this.warmupSteps() ? 0 : SWITCH_MARGIN;
  }

  budgetWeight(): number {
    return this.state.gain / this.latentStepScale();
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
    const holding = s.step >= this.warmupSteps();
    if (sign !== 0 && s.lastSign !== 0 && sign !== s.lastSign) {
      // The masks crossed the scheduled target: the pull overshot.
      s.gain = Math.max(1, s.gain / 2);
      if (holding) s.crossedInHold = true;
    } else if (sign !== 0 && holding && s.crossedInHold) {
      // Off target after the masks have crossed the held target: the pull has proven strong enough
      // (growing it again is what kept the swing going: measured in docs/search.md); hold it.
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

/**
 * Applies the schedule's latent step factor after each optimizer step: keeps `scale` of the step
 * each latent just took (the same as scaling the latents' learning rate: SGD with momentum moves a
 * variable by lr x its velocity) and clips the latents to [0, 1] (BinaryConnect's clipping of
 * straight-through weights: a channel is never more than 0.5 from changing state, so a layer the
 * budget pull over-pruned can come back within a few steps). One per epoch: it starts from the
 * latents as they are, which after a checkpoint are the settled ones, so a resumed search
 * continues exactly.
 */
export class LatentStepScaler {
  private previous: tf.Tensor[];

  constructor(private readonly latents: tf.LayerVariable[]) {
    this.previous = latents.map((v) => tf.keep(v.read().clone()));
  }

  settle(scale: number, margin = 0): void {
    const next = tf.tidy(() =>
      this.latents.map((v, i) => {
        const before = this.previous[i];
        let stepped = scale === 1 ? v.read() : tf.add(before, tf.mul(tf.sub(v.read(), before), scale));
        if (margin > 0) {
          const wasKept = tf.greater(before, KEEP_THRESHOLD);
          const isKept = tf.greater(stepped, KEEP_THRESHOLD);
          const switchedOn = tf.logicalAnd(isKept, tf.logicalNot(wasKept));
          const switchedOff = tf.logicalAnd(wasKept, tf.logicalNot(isKept));
          stepped = tf.where(switchedOn, tf.maximum(stepped, KEEP_THRESHOLD + margin), tf.where(switchedOff, tf.minimum(stepped, KEEP_THRESHOLD - margin), stepped));
        }
        return tf.clipByValue(stepped, 0, 1);
      }),
    );
    this.latents.forEach((v, i) => v.write(next[i]));
    tf.dispose(this.previous);
    this.previous = next;
  }

  dispose(): void {
    tf.dispose(this.previous);
    this.previous = [];
  }
}
