/**
 * Reparameterization under TensorFlow's padding rules: 'same' pads total = max((out-1)*s + k - in, 0)
 * rows, floor(total/2) before and the rest after, so a stride-2 'same' 3x3 on an even map starts
 * its window at row 2i while a 1x1 reads row 2i. Every branch is placed by its own window origin;
 * the property: training-time == deployed (1e-5 of the output scale), blocks fused, for strides
 * 1 and 2, odd and even sizes, 'same', 'valid' and explicitly zero-padded branches.
 */
import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { graphFromModel } from '../../src/engine/graph/modelGraph';
import { reparameterizeWithReport } from '../../src/engine/transform/reparameterize';
import { maxAbs, maxAbsDiff, predictGraph, randomInputFor, randomizeBatchNorm } from '../support/tensors';

const L = tf.layers;
type Sym = tf.SymbolicTensor;

interface Branch {
  kernel: [number, number];
  padding: 'same' | 'valid';
  /** ZeroPadding2D in front of the conv: [[top, bottom], [left, right]]. */
  zeroPad?: [[number, number], [number, number]];
}

const VARIANTS: Record<string, Branch[] | 'identity'> = {
  'same 3x3 + same 1x1': [{ kernel: [3, 3], padding: 'same' }, { kernel: [1, 1], padding: 'same' }],
  'same 3x3 + valid 1x1': [{ kernel: [3, 3], padding: 'same' }, { kernel: [1, 1], padding: 'valid' }],
  'ZeroPadding2D(1) + valid 3x3, valid 1x1': [{ kernel: [3, 3], padding: 'valid', zeroPad: [[1, 1], [1, 1]] }, { kernel: [1, 1], padding: 'valid' }],
  "TF-style ZeroPadding2D((0,1),(0,1)) + valid 3x3, valid 1x1": [{ kernel: [3, 3], padding: 'valid', zeroPad: [[0, 1], [0, 1]] }, { kernel: [1, 1], padding: 'valid' }],
  'same 5x5 + same 3x3 + same 1x1': [{ kernel: [5, 5], padding: 'same' }, { kernel: [3, 3], padding: 'same' }, { kernel: [1, 1], padding: 'same' }],
  'same 1x7 + same 7x1 + same 3x3': [{ kernel: [1, 7], padding: 'same' }, { kernel: [7, 1], padding: 'same' }, { kernel: [3, 3], padding: 'same' }],
  'valid 3x3 on ZeroPadding2D(1) + same 3x3': [{ kernel: [3, 3], padding: 'valid', zeroPad: [[1, 1], [1, 1]] }, { kernel: [3, 3], padding: 'same' }],
  'valid 2x2 + valid 1x1 (even kernel)': [{ kernel: [2, 2], padding: 'valid' }, { kernel: [1, 1], padding: 'valid' }],
  'same 3x3 + same 1x1 + identity BN': 'identity',
};

/** TF's output size of a branch: ceil(in / s) for 'same', floor((in - k) / s) + 1 for 'valid' (after explicit padding). */
function branchOutputSize(b: Branch, stride: number, size: number): number {
  const padded = size + (b.zeroPad ? b.zeroPad[0][0] + b.zeroPad[0][1] : 0);
  return b.padding === 'same' ? Math.ceil(padded / stride) : Math.floor((padded - b.kernel[0]) / stride) + 1;
}

/** Whether TF gives every branch the same output size (else no Keras model has this block). */
function branchesAlign(branches: Branch[] | 'identity', stride: number, size: number): boolean {
  if (branches === 'identity') return stride === 1;
  return branches.every((b) => branchOutputSize(b, stride, size) === branchOutputSize(branches[0], stride, size));
}

/** A block over x: each branch conv -> BN, summed by an Add (then ReLU). */
function buildBlock(branches: Branch[] | 'identity', stride: number, size: number): tf.LayersModel {
  const input = tf.input({ shape: [size, size, 4], name: 'image' });
  const x = L.conv2d({ filters: 4, kernelSize: 1, name: 'stem' }).apply(input) as Sym;
  const list: Branch[] = branches === 'identity' ? [{ kernel: [3, 3], padding: 'same' }, { kernel: [1, 1], padding: 'same' }] : branches;
  const outputs = list.map((b, i) => {
    let t = x;
    if (b.zeroPad) t = L.zeroPadding2d({ padding: b.zeroPad, name: `pad${i}` }).apply(t) as Sym;
    t = L.conv2d({ filters: 4, kernelSize: b.kernel, strides: stride, padding: b.padding, useBias: i === 0, name: `conv${i}` }).apply(t) as Sym;
    return L.batchNormalization({ name: `bn${i}` }).apply(t) as Sym;
  });
  if (branches === 'identity') outputs.push(L.batchNormalization({ name: 'bn_identity' }).apply(x) as Sym);
  const sum = L.add({ name: 'block_add' }).apply(outputs) as Sym;
  return tf.model({ inputs: input, outputs: L.reLU({ name: 'block_relu' }).apply(sum) as Sym });
}

describe('engine: reparameterization follows TensorFlow padding exactly', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  let cases = 0;
  for (const [label, branches] of Object.entries(VARIANTS)) {
    for (const stride of [1, 2]) {
      for (const size of [7, 8]) {
        if (!branchesAlign(branches, stride, size)) continue;
        cases++;
        it(`${label}, stride ${stride}, ${size}x${size}: deployed == training-time, fused into one conv`, async () => {
          const model = buildBlock(branches, stride, size);
          const graph = graphFromModel(model);
          model.dispose();
          randomizeBatchNorm(graph, stride * 100 + size);
          const { graph: deployed, unfused } = reparameterizeWithReport(graph);
          assert.deepStrictEqual(unfused, []);
          assert.ok(!deployed.nodes.some((n) => n.className === 'Add' || n.className === 'BatchNormalization'), 'the block is one conv');
          const input = randomInputFor(graph, 2, size);
          try {
            const expected = await predictGraph(graph, input);
            const actual = await predictGraph(deployed, input);
            const scale = maxAbs(expected);
            assert.ok(scale > 1e-2, 'the output is not trivially zero');
            const diff = maxAbsDiff(actual, expected);
            assert.ok(diff <= 1e-5 * scale, `max diff ${diff} > 1e-5 of the output scale ${scale}`);
          } finally {
            input.dispose();
          }
        });
      }
    }
  }

  it('covers most stride/size/padding combinations', () => {
    assert.ok(cases >= 28, `only ${cases} combinations are valid blocks`);
  });
});
