import type { WeightArray } from '../modelGraph';

const product = (values: number[]) => values.reduce((a, b) => a * b, 1);

/** Slices one axis of a weight to the given indices (in the given order). */
export function sliceAxis(weight: WeightArray, axis: number, keep: number[]): WeightArray {
  const shape = weight.shape;
  const outer = product(shape.slice(0, axis));
  const inner = product(shape.slice(axis + 1));
  const size = shape[axis];
  const values = new Float32Array(outer * keep.length * inner);
  let dst = 0;
  for (let o = 0; o < outer; o++) {
    for (const k of keep) {
      const src = (o * size + k) * inner;
      values.set(weight.values.subarray(src, src + inner), dst);
      dst += inner;
    }
  }
  const newShape = shape.slice();
  newShape[axis] = keep.length;
  return { shape: newShape, values };
}

/** Multiplies every entry of a weight by `scale[c]`, c its index along `axis` (in place). */
export function scaleAxis(weight: WeightArray, axis: number, scale: ArrayLike<number>): void {
  const inner = product(weight.shape.slice(axis + 1));
  const size = weight.shape[axis];
  for (let i = 0; i < weight.values.length; i++) weight.values[i] *= scale[Math.floor(i / inner) % size];
}

/** Channel indices `c * multiplier + m` of a depth-multiplied axis, for kept input channels `keep`. */
export function expandByMultiplier(keep: number[], multiplier: number): number[] {
  if (multiplier === 1) return keep;
  return keep.flatMap((c) => Array.from({ length: multiplier }, (_, m) => c * multiplier + m));
}
