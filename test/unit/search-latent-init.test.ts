import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { InvalidArgumentError } from 'commander';
import { parseLatentPrior } from '../../src/cli/options';
import { mulberry32 } from '../../src/engine/data/random';
import { graphFromModel } from '../../src/engine/graph/modelGraph';
import { keptChannelIndices } from '../../src/engine/layers/dbc';
import { DEFAULT_LATENT_PRIOR, initialSearchLatents, SEARCH_LATENT_INIT } from '../../src/engine/search/latentInit';
import { insertMasks } from '../../src/engine/transform/masks';
import { buildBuiltin } from '../../src/engine/zoo/builtins';

/** The unmasked default RepVGG with BN gammas randomized (signs too), so that importances differ. */
function plainDefault(seed: number) {
  const model = buildBuiltin('builtin:default', { seed });
  const plain = graphFromModel(model);
  model.dispose();
  const random = mulberry32(seed);
  for (const weights of plain.weights.values()) if (weights.gamma) weights.gamma.values.forEach((_, i, a) => (a[i] = (random() - 0.3) * 2));
  return plain;
}

/**
 * Importance of a block's channel written out here, independently of channelImportance: |gamma|
 * of its 3x3 BN plus |gamma| of its 1x1 BN (the PaS paper's slimming criterion for RepVGG).
 */
function blockImportance(plain: ReturnType<typeof plainDefault>, groupName: string): (c: number) => number {
  const bn3 = plain.weights.get([...plain.weights.keys()].find((n) => n.startsWith(groupName) && n.endsWith('_bn3x3'))!)!.gamma.values;
  const bn1 = plain.weights.get([...plain.weights.keys()].find((n) => n.startsWith(groupName) && n.endsWith('_bn1x1'))!)!.gamma.values;
  return (c) => Math.abs(bn3[c]) + Math.abs(bn1[c]);
}

describe('PaS latent initialisation: an importance prior', () => {
  before(() => tf.setBackend('cpu'));

  it('orders each layer\'s latents by |gamma|, every channel kept, spanning exactly the spread', () => {
    const plain = plainDefault(11);
    const latents = initialSearchLatents(plain, DEFAULT_LATENT_PRIOR);
    const { layout } = insertMasks(plain, { latents });
    assert.equal(latents.size, layout.layerOfGroup.size, 'one latent vector per masked group');
    let checkedBlocks = 0;
    for (const [id, values] of latents) {
      assert.equal(keptChannelIndices(values).length, values.length, `${id}: every channel starts kept`);
      const max = Math.max(...values);
      const min = Math.min(...values);
      assert.ok(Math.abs(max - min - DEFAULT_LATENT_PRIOR) < 1e-6 * DEFAULT_LATENT_PRIOR, `${id}: span ${max - min}`);
      assert.ok(Math.abs((max + min) / 2 - SEARCH_LATENT_INIT) < 1e-6, `${id}: centred on the init`);
      const groupName = layout.layerOfGroup.get(id)!.replace(/_dbc(_\d+)?$/, '');
      if (![...plain.weights.keys()].some((n) => n.startsWith(groupName) && n.endsWith('_bn1x1'))) continue;
      const importance = blockImportance(plain, groupName);
      for (let a = 0; a < values.length; a++) {
        for (let b = 0; b < values.length; b++) {
          if (importance(a) > importance(b) + 1e-7) assert.ok(values[a] > values[b], `${id}: channel ${a} (|gamma| ${importance(a)}) starts below ${b} (${importance(b)})`);
        }
      }
      checkedBlocks++;
    }
    assert.ok(checkedBlocks >= 3, `only ${checkedBlocks} blocks checked`);
  });

  it('under the same pull on every latent of a layer, the higher-|gamma| channels are the ones kept', () => {
    const plain = plainDefault(12);
    const withPrior = initialSearchLatents(plain, DEFAULT_LATENT_PRIOR);
    const equal = initialSearchLatents(plain, 0);
    const { layout } = insertMasks(plain, { latents: withPrior });
    const id = [...withPrior.keys()].find((g) => [...plain.weights.keys()].some((n) => n.startsWith(layout.layerOfGroup.get(g)!.replace(/_dbc$/, '')) && n.endsWith('_bn1x1')))!;
    const importance = blockImportance(plain, layout.layerOfGroup.get(id)!.replace(/_dbc$/, ''));
    // The budget pull moves every latent of a layer by the same amount: enough to put half of them
    // under the threshold when they start spread, and all or none when they start equal.
    const pull = SEARCH_LATENT_INIT - 0.5;
    const pulled = (values: Float32Array) => values.map((v) => v - pull);
    const kept = keptChannelIndices(pulled(withPrior.get(id)!));
    const width = withPrior.get(id)!.length;
    assert.ok(kept.length > 0 && kept.length < width, `kept ${kept.length} of ${width}`);
    const dropped = [...Array(width).keys()].filter((c) => !kept.includes(c));
    const weakestKept = Math.min(...kept.map(importance));
    for (const c of dropped) assert.ok(importance(c) <= weakestKept + 1e-7, `dropped channel ${c} outranks a kept one`);
    const keptEqual = keptChannelIndices(pulled(equal.get(id)!)).length;
    assert.ok(keptEqual === 0 || keptEqual === width, 'equal latents cross the threshold all together');
  });

  it('a spread of 0 is the constant init, and a spread that would start channels masked is refused', () => {
    const plain = plainDefault(13);
    for (const values of initialSearchLatents(plain, 0).values()) assert.ok(values.every((v) => v === Math.fround(SEARCH_LATENT_INIT)));
    const limit = 2 * (SEARCH_LATENT_INIT - 0.5);
    assert.throws(() => initialSearchLatents(plain, limit), /every channel starts kept/);
    assert.throws(() => initialSearchLatents(plain, -0.01), /every channel starts kept/);
    assert.equal(parseLatentPrior('0.05'), 0.05);
    assert.throws(() => parseLatentPrior(String(limit)), InvalidArgumentError);
    assert.throws(() => parseLatentPrior('x'), InvalidArgumentError);
  });
});
