import * as assert from 'assert';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backends';

function isInstalled(packageName: string): boolean {
  try {
    require.resolve(packageName);
    return true;
  } catch {
    return false;
  }
}

describe('backend ladder', () => {
  before(async () => {
    await initBackend('cpu');
  });

  for (const [choice, packageName] of [
    ['node', '@tensorflow/tfjs-node'],
    ['node-gpu', '@tensorflow/tfjs-node-gpu'],
  ] as const) {
    it(`forcing '${choice}' loads ${packageName} or says how to install it`, async () => {
      if (isInstalled(packageName)) {
        const info = await initBackend(choice);
        assert.strictEqual(info.name, choice);
        assert.strictEqual(tf.getBackend(), 'tensorflow');
      } else {
        await assert.rejects(initBackend(choice), (error: Error) => {
          assert.match(error.message, new RegExp(`npm install ${packageName.replace('/', '\\/')}@${tf.version.tfjs}`));
          return true;
        });
      }
    });
  }

  it("'auto' picks the fastest available backend and notes what it skipped", async () => {
    const info = await initBackend('auto');
    if (isInstalled('@tensorflow/tfjs-node-gpu') || isInstalled('@tensorflow/tfjs-node')) {
      assert.ok(info.name === 'node-gpu' || info.name === 'node');
    } else {
      assert.strictEqual(info.name, 'wasm');
      assert.strictEqual(tf.getBackend(), 'wasm');
      assert.match(info.note ?? '', /tfjs-node-gpu.*tfjs-node/);
      assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'auto on wasm must register the training kernels');
    }
  });

  it('can be called repeatedly and switch between backends', async () => {
    const first = await initBackend('wasm');
    const second = await initBackend('wasm');
    assert.deepStrictEqual(second, first);
    assert.strictEqual(first.threads >= 1, true);
    const cpu = await initBackend('cpu');
    assert.deepStrictEqual(cpu, { name: 'cpu', threads: 1 });
    assert.strictEqual(tf.getBackend(), 'cpu');
    await initBackend('wasm');
    assert.strictEqual(tf.getBackend(), 'wasm');
    const y = tf.conv2d(tf.ones([1, 4, 4, 1]) as tf.Tensor4D, tf.ones([3, 3, 1, 1]) as tf.Tensor4D, 1, 'same');
    assert.strictEqual(y.dataSync()[5], 9);
    y.dispose();
  });
});
