/**
 * A tiny image-folder dataset (`folder:DIR`, one subfolder per class, PNG) for searches on models
 * whose class count differs from the bundled sample's 10: each class is a different stripe
 * orientation and frequency with noise, so it is learnable, at any resolution. Not a test file.
 */
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { mulberry32 } from '../../src/engine/data/random';

export function writeStripeImageFolder(dir: string, options: { classes: number; perClass: number; size: number; seed: number }): string {
  const random = mulberry32(options.seed);
  for (let k = 0; k < options.classes; k++) {
    const classDir = path.join(dir, `class_${k}`);
    fs.mkdirSync(classDir, { recursive: true });
    const angle = (Math.PI * k) / options.classes;
    const frequency = 0.3 + 0.15 * k;
    for (let i = 0; i < options.perClass; i++) {
      const png = new PNG({ width: options.size, height: options.size });
      for (let y = 0; y < options.size; y++) {
        for (let x = 0; x < options.size; x++) {
          const stripe = Math.sin(frequency * (x * Math.cos(angle) + y * Math.sin(angle)) + 6 * random());
          const value = Math.max(0, Math.min(255, Math.round(128 + 90 * stripe + 40 * (random() - 0.5))));
          const at = 4 * (y * options.size + x);
          png.data[at] = value;
          png.data[at + 1] = (value + 40 * k) % 256;
          png.data[at + 2] = 255 - value;
          png.data[at + 3] = 255;
        }
      }
      fs.writeFileSync(path.join(classDir, `${i}.png`), PNG.sync.write(png));
    }
  }
  return dir;
}
