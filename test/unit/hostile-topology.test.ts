/**
 * Regressions found by `npm run fuzz`: layer graphs on which tfjs' deserializer loops forever.
 * The loader must refuse them up front (a hang is worse than a crash: nothing is reported).
 */
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PasInputError } from '../../src/engine/errors';
import { loadLayersModelFromFile, saveLayersModelToDir } from '../../src/engine/io';
import { buildBuiltin } from '../../src/engine/zoo/builtins';
import { makeTempDir } from '../support/cli';

describe('hostile layer graphs that used to hang tfjs', function () {
  this.timeout(60_000);
  let root: string;
  let valid: string;
  before(async () => {
    root = makeTempDir('pas-hostile-topology-');
    valid = path.join(root, 'valid');
    const model = buildBuiltin('builtin:residual-cnn', { inputShape: [8, 8, 1], numClasses: 3, widthMultiplier: 0.25, seed: 1 });
    await saveLayersModelToDir(model, valid);
    model.dispose();
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  const cases: Array<[string, (layers: any[]) => void, RegExp]> = [
    ['a layer with no inbound nodes that others take input from', (layers) => { layers[2].inbound_nodes = []; }, /no inbound nodes \(it is never applied/],
    ['an inbound node that lists no inputs', (layers) => { layers[2].inbound_nodes = [[]]; }, /an inbound node with no inputs/],
    ['a top-level layer name that is not a string', (layers) => { layers[2].name = {}; }, /has no name/],
  ];
  cases.forEach(([name, edit, pattern], index) => {
    it(`refuses ${name}`, async () => {
      const dir = path.join(root, `case-${index}`);
      fs.cpSync(valid, dir, { recursive: true });
      const file = path.join(dir, 'model.json');
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      edit(json.modelTopology.config.layers);
      fs.writeFileSync(file, JSON.stringify(json));
      await assert.rejects(loadLayersModelFromFile(file), (error: unknown) => {
        assert.ok(error instanceof PasInputError, String(error));
        assert.strictEqual(error.file, file);
        assert.match(error.message, pattern);
        return true;
      });
    });
  });
});
