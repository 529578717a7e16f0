/**
 * The "Done when" measurement of the ONNX support on full-size torchvision models (224x224, 1000
 * classes), written by `scripts/export-onnx-fixtures.py --full .cache/onnx-full --only-full`:
 * MACs of the imported model vs PyTorch's forward-hook count, the imported model's output vs
 * PyTorch's, and the deployed ONNX (what `pas reparam --format onnx` writes) in onnxruntime vs
 * PyTorch. Writes bench/results/onnx-full-size.json.
 *
 * Usage: npx tsx scripts/measure-onnx-full.ts [.cache/onnx-full]
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import * as ort from 'onnxruntime-node';
import { initBackend } from '../src/engine/backends';
import { deployModel } from '../src/engine/deploy';
import { inspectModel } from '../src/engine/inspect';
import { exportOnnxBytes, importOnnxModel } from '../src/engine/onnx';

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / scale;
}

async function main(): Promise<void> {
  const dir = process.argv[2] ?? '.cache/onnx-full';
  const backend = await initBackend('wasm');
  const results: Record<string, unknown>[] = [];
  for (const name of ['resnet18', 'mobilenetv2', 'efficientnet-b0']) {
    const file = path.join(dir, `${name}.onnx`);
    const ref = JSON.parse(fs.readFileSync(path.join(dir, `${name}.ref.json`), 'utf8'));
    const started = Date.now();
    const { model, info } = await importOnnxModel(file);
    const macs = inspectModel(model, file).trainingForm.totalMacs;
    const [n, c, h, w] = ref.inputShape;
    const nchw = Float32Array.from(ref.input);
    const input = tf.tidy(() => tf.transpose(tf.tensor(nchw, ref.inputShape), [0, 2, 3, 1]));
    const imported = (model.predict(input) as tf.Tensor).dataSync();
    const deployment = await deployModel(model, [h, w, c]);
    const bytes = exportOnnxBytes(deployment.deployed, { source: info });
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const deployedOnnx = (await session.run({ [info.inputName]: new ort.Tensor('float32', nchw, [n, c, h, w]) }))[info.outputName].data as Float32Array;
    const row = {
      model: name,
      input: `${h}x${w}x${c}`,
      macsPyTorch: ref.macsPerImage,
      macsPas: macs,
      macsRatio: macs / ref.macsPerImage,
      importedVsPyTorchRelErr: relativeError(imported, ref.output),
      deployedOnnxVsPyTorchRelErr: relativeError(deployedOnnx, ref.output),
      deployedOnnxBytes: bytes.length,
      seconds: (Date.now() - started) / 1000,
    };
    console.log(JSON.stringify(row));
    results.push(row);
    input.dispose();
    model.dispose();
    deployment.deployed.dispose();
    await session.release();
  }
  const out = path.join('bench', 'results', 'onnx-full-size.json');
  fs.writeFileSync(out, JSON.stringify({ measured: new Date().toISOString(), backend: backend.name, results }, null, 2) + '\n');
  console.log(`written ${out}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
