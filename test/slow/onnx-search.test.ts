/**
 * Tiny `pas search --format onnx` runs on the other ONNX fixtures (about 40 s each on 2 shared
 * cores): kept out of `npm test`; run with `npm run test:slow`.
 */
import * as fs from 'fs';
import { strict as assert } from 'assert';
import { hasLayerRule } from '../../src/engine/graph/layerRules';
import { makeTempDir } from '../support/cli';
import type { FixtureName } from '../support/onnx';
import { searchAndCheck } from '../support/onnxSearch';

describe('pas search --format onnx on every ONNX fixture family', function () {
  this.timeout(900_000);
  let work: string;
  before(() => {
    work = makeTempDir('pas-onnx-slow-');
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it('MobileNetV2 (ReLU6, depthwise, inverted residuals)', () => searchAndCheck(work, 'mobilenetv2'));

  // Squeeze-excitation and concatenation: the layer-rules registry's Multiply/Reshape/Concatenate rules.
  // DenseNet's BN -> ReLU -> conv after each concatenation holds the concatenated groups at full
  // width (a BN there would re-fill dropped channels; docs/layers.md), so only its bottleneck convs
  // prune: about 74% of its MACs is the floor, and its target is 85%.
  // Grouped convolutions hold the channels they read and write (docs/layers.md): the fixture's
  // floor is 58% of its MACs, its target 80%. ceil_mode pooling and x.mean / torch.amax pooling
  // import as stock pooling layers and prune like any other model.
  const cases: Array<[FixtureName, string[], number]> = [
    ['efficientnet-b0', ['Multiply', 'Reshape'], 0.5],
    ['densenet-tiny', ['Concatenate'], 0.85],
    ['grouped-convs', ['GroupedConv2D'], 0.8],
    ['shufflenet-tiny', ['ChannelShuffle', 'ChannelSlice'], 0.5],
    ['pooling-variants', ['MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D'], 0.5],
  ];
  for (const [name, needs, target] of cases) {
    it(`${name} (needs ${needs.join(', ')}) to ${target * 100}% of its MACs`, async () => {
      assert.deepEqual(needs.filter((c) => !hasLayerRule(c)), [], 'the layer-rules registry has no rule for these classes');
      await searchAndCheck(work, name, target);
    });
  }
});
