/** Tiny PNG image folders for data tests: class folders or a flat folder of unlabelled images. Not a test file. */
import * as fs from 'fs';
import * as path from 'path';
import { PNG } from 'pngjs';
import { mulberry32 } from '../../src/engine/data/random';

/** Writes a size x size RGB (or gray) PNG of seeded noise around a class-specific brightness. */
export function writeNoisePng(file: string, size: number, seed: number, brightness: number, colour = false): void {
  const random = mulberry32(seed);
  const png = new PNG({ width: size, height: size });
  for (let i = 0; i < size * size; i++) {
    const base = Math.round(brightness * 200 + random() * 55);
    png.data[4 * i] = base;
    png.data[4 * i + 1] = colour ? Math.round(random() * 255) : base;
    png.data[4 * i + 2] = base;
    png.data[4 * i + 3] = 255;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png));
}

/** `classes` subfolders of `perClass` images each; returns the folder. */
export function makeClassFolder(dir: string, classes: number, perClass: number, size = 8): string {
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < perClass; i++) writeNoisePng(path.join(dir, `class${c}`, `img${i}.png`), size, 1000 * c + i, c / Math.max(1, classes - 1));
  }
  return dir;
}

/** A flat folder of `count` unlabelled images (no class subfolders); returns the folder. */
export function makeFlatFolder(dir: string, count: number, size = 8, colour = false): string {
  for (let i = 0; i < count; i++) writeNoisePng(path.join(dir, `img${String(i).padStart(3, '0')}.png`), size, 77 + i, (i % 5) / 4, colour);
  return dir;
}
