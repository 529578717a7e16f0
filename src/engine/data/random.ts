/**
 * Small seeded random numbers, so that data order, splits and augmentation are reproducible
 * from one integer seed. Not for cryptography.
 */

/** A function returning uniformly distributed numbers in [0, 1). */
export type Random = () => number;

/**
 * mulberry32: a 32-bit state generator, fast and good enough for shuffling and augmentation.
 * The same seed always gives the same sequence.
 */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Combines several integers (a seed, an epoch, a purpose tag) into one well-mixed 32-bit seed.
 * Nearby inputs such as epochs 1 and 2 must give unrelated streams, which plain addition would not.
 */
export function deriveSeed(...parts: number[]): number {
  let hash = 0x811c9dc5;
  for (const part of parts) {
    hash = Math.imul(hash ^ (part >>> 0), 0x01000193);
    // murmur3 finalizer: spreads every input bit over the whole word.
    hash ^= hash >>> 16;
    hash = Math.imul(hash, 0x85ebca6b);
    hash ^= hash >>> 13;
    hash = Math.imul(hash, 0xc2b2ae35);
    hash ^= hash >>> 16;
  }
  return hash >>> 0;
}

/** A uniformly random integer in [0, exclusiveMax). */
export function randomInt(random: Random, exclusiveMax: number): number {
  return Math.floor(random() * exclusiveMax);
}

/** Shuffles `values` in place (Fisher-Yates) and returns it. */
export function shuffleInPlace<T extends { length: number; [index: number]: number }>(values: T, random: Random): T {
  for (let i = values.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1);
    const swap = values[i];
    values[i] = values[j];
    values[j] = swap;
  }
  return values;
}

/** The indices 0..count-1 in a random order determined by `random`. */
export function shuffledIndices(count: number, random: Random): Int32Array {
  const indices = new Int32Array(count);
  for (let i = 0; i < count; i++) indices[i] = i;
  return shuffleInPlace(indices, random);
}
