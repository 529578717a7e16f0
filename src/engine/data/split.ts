/**
 * Seeded, class-stratified selection of examples: used to hold out a validation set, to split a
 * single image folder into train and test, to cap a split at `maxTrain`/`maxTest` examples, and
 * to draw the bundled sample. Stratifying keeps class proportions in small subsets, where a plain
 * random draw could leave a class nearly empty.
 */
import { Random, shuffleInPlace } from './random';

/**
 * Orders `indices` so that every prefix holds the classes in (nearly) the same proportions as
 * the whole: within each class the order is random, and the classes are interleaved by each
 * example's relative rank in its class. For balanced classes this is a round robin.
 */
export function stratifiedOrder(indices: Int32Array, labels: ArrayLike<number>, random: Random): Int32Array {
  const byClass = new Map<number, number[]>();
  for (const index of indices) {
    const label = labels[index];
    let members = byClass.get(label);
    if (!members) byClass.set(label, (members = []));
    members.push(index);
  }
  const keyed: { index: number; key: number; label: number }[] = [];
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = shuffleInPlace(byClass.get(label)!, random);
    members.forEach((index, rank) => keyed.push({ index, key: (rank + 0.5) / members.length, label }));
  }
  keyed.sort((a, b) => a.key - b.key || a.label - b.label);
  return Int32Array.from(keyed, (entry) => entry.index);
}

/**
 * Splits `indices` into a stratified random part of `firstCount` examples and the rest. Both
 * parts come back in ascending index order, so they keep the source's order.
 */
export function stratifiedSplit(
  indices: Int32Array,
  labels: ArrayLike<number>,
  firstCount: number,
  random: Random,
): [first: Int32Array, rest: Int32Array] {
  const order = stratifiedOrder(indices, labels, random);
  const count = Math.max(0, Math.min(firstCount, order.length));
  return [order.slice(0, count).sort(), order.slice(count).sort()];
}

/** The indices 0..count-1. */
export function allIndices(count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => i);
}
