// Writes a tiny training-time RepVGG (28x28x1 input, 10 classes: the bundled sample data's shape)
// as a TensorFlow.js Layers model into the folder given as argv[2], using the engine's own zoo and
// saver, so the e2e workspace has a real model.json + weights.bin to right-click.
import * as fs from 'fs';
import * as path from 'path';
import { buildRepVgg } from '../../src/engine/zoo/repvgg';
import { saveLayersModelToDir } from '../../src/engine/io/saveModel';

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: make-model.ts OUTDIR');
  const model = buildRepVgg({ variant: 'A0', inputShape: [28, 28, 1], numClasses: 10, widthMultiplier: 0.25, blocksPerStage: [1, 1, 1, 1, 1], seed: 1, name: 'tiny_repvgg' });
  fs.mkdirSync(path.dirname(path.resolve(dir)), { recursive: true });
  const saved = await saveLayersModelToDir(model, dir);
  process.stdout.write(`${saved.modelJsonPath}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
