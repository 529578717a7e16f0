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
  for (const [name, needs] of [['efficientnet-b0', ['Multiply', 'Reshape']], ['densenet-tiny', ['Concatenate']]] as [FixtureName, string[]][]) {
    it(`${name} (needs ${needs.join(', ')})`, async () => {
      assert.deepEqual(needs.filter((c) => !hasLayerRule(c)), [], 'the layer-rules registry has no rule for these classes');
      await searchAndCheck(work, name);
    });
  }
});
