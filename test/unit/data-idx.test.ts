import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { PasInputError } from '../../src/engine/errors';
import {
  encodeIdx,
  isGzip,
  readIdxFile,
  readIdxImages,
  readIdxImagesAndLabels,
  readIdxLabels,
  writeIdxFile,
} from '../../src/engine/data/idx';
import { makeTempDir, removeTempDir } from '../fixtures/data/images';

/** Asserts that `promise` rejects with a PasInputError for `file` whose message matches `pattern`. */
async function assertInputError(promise: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PasInputError, `expected PasInputError, got ${error}`);
    assert.equal(error.file, file);
    assert.match(error.message, pattern);
    assert.ok(error.message.startsWith(file), 'the message names the file');
    return true;
  });
}

function patternedBytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 37 + 11) % 256);
}

describe('data: IDX files', () => {
  let dir: string;
  beforeEach(() => (dir = makeTempDir()));
  afterEach(() => removeTempDir(dir));

  for (const gzip of [false, true]) {
    it(`round-trips images and labels ${gzip ? 'gzipped' : 'uncompressed'}`, async () => {
      const pixels = patternedBytes(3 * 4 * 5);
      const labels = Uint8Array.from([2, 0, 1]);
      const imagesFile = path.join(dir, 'images-idx3-ubyte');
      const labelsFile = path.join(dir, 'labels-idx1-ubyte');
      await writeIdxFile(imagesFile, [3, 4, 5], pixels, { gzip });
      await writeIdxFile(labelsFile, [3], labels, { gzip });
      assert.equal(isGzip(fs.readFileSync(imagesFile)), gzip);

      const read = await readIdxImagesAndLabels(imagesFile, labelsFile, 3);
      assert.deepEqual([read.images.count, read.images.height, read.images.width], [3, 4, 5]);
      assert.deepEqual(Array.from(read.images.pixels), Array.from(pixels));
      assert.equal(read.labels.count, 3);
      assert.deepEqual(Array.from(read.labels.labels), [2, 0, 1]);
    });
  }

  it('writes the standard header: 00 00 08 rank, then big-endian dims', () => {
    const bytes = encodeIdx([2, 1, 3], patternedBytes(6), { gzip: false });
    assert.deepEqual(Array.from(bytes.subarray(0, 16)), [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3]);
    assert.equal(bytes.length, 16 + 6);
  });

  it('rejects a file without the IDX magic number', async () => {
    const file = path.join(dir, 'not-idx');
    fs.writeFileSync(file, Buffer.from('PK\x03\x04 a zip file, not IDX'));
    await assertInputError(readIdxFile(file), file, /not an IDX file: it starts with bytes 50 4b 03 04/);
  });

  it('rejects a dtype other than unsigned byte', async () => {
    const file = path.join(dir, 'floats');
    const bytes = encodeIdx([2], Uint8Array.from([1, 2]), { gzip: false });
    bytes[2] = 0x0d;
    fs.writeFileSync(file, bytes);
    await assertInputError(readIdxFile(file), file, /dtype byte is 0x0d \(float32\)/);
  });

  it('rejects a file shorter than its header', async () => {
    const file = path.join(dir, 'short-header');
    fs.writeFileSync(file, Buffer.from([0, 0, 8, 3, 0, 0]));
    await assertInputError(readIdxFile(file), file, /declares 3 dimensions \(a 16-byte header\) but the file holds only 6 bytes/);
  });

  it('rejects a file whose data is shorter or longer than the header says', async () => {
    const full = encodeIdx([4, 3, 3], patternedBytes(36), { gzip: false });
    const truncated = path.join(dir, 'truncated');
    fs.writeFileSync(truncated, full.subarray(0, full.length - 5));
    await assertInputError(readIdxImages(truncated), truncated, /header says shape \[4, 3, 3\] \(36 bytes of data\) but the file holds 31 bytes.*truncated/);

    const padded = path.join(dir, 'padded.gz');
    fs.writeFileSync(padded, zlib.gzipSync(Buffer.concat([full, Buffer.from([1, 2])])));
    await assertInputError(readIdxImages(padded), padded, /holds 38 bytes of data/);
  });

  it('rejects a corrupt gzip stream', async () => {
    const file = path.join(dir, 'broken.gz');
    fs.writeFileSync(file, Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]));
    await assertInputError(readIdxFile(file), file, /starts like gzip but does not decompress/);
  });

  it('rejects a missing file', async () => {
    const file = path.join(dir, 'missing');
    await assertInputError(readIdxFile(file), file, /cannot read the file/);
  });

  it('rejects images or labels of the wrong rank', async () => {
    const labelsFile = path.join(dir, 'labels');
    const imagesFile = path.join(dir, 'images');
    await writeIdxFile(labelsFile, [4], Uint8Array.from([0, 1, 0, 1]), { gzip: false });
    await writeIdxFile(imagesFile, [1, 2, 2], patternedBytes(4), { gzip: false });
    await assertInputError(readIdxImages(labelsFile), labelsFile, /expected IDX images of shape \[count, height, width\] but the header says shape \[4\]/);
    await assertInputError(readIdxLabels(imagesFile), imagesFile, /expected IDX labels of shape \[count\]/);
  });

  it('rejects a label out of range when the class count is given', async () => {
    const file = path.join(dir, 'labels.gz');
    await writeIdxFile(file, [5], Uint8Array.from([0, 9, 3, 10, 1]), { gzip: true });
    await assertInputError(readIdxLabels(file, 10), file, /label 10 at index 3 is out of range: the dataset has 10 classes \(labels 0\.\.9\)/);
    const accepted = await readIdxLabels(file, 11);
    assert.equal(accepted.count, 5);
    const unchecked = await readIdxLabels(file);
    assert.equal(unchecked.labels[3], 10);
  });

  it('rejects image and label files with different counts', async () => {
    const imagesFile = path.join(dir, 'images');
    const labelsFile = path.join(dir, 'labels');
    await writeIdxFile(imagesFile, [5, 2, 2], patternedBytes(20), { gzip: false });
    await writeIdxFile(labelsFile, [4], Uint8Array.from([0, 1, 0, 1]), { gzip: false });
    await assertInputError(
      readIdxImagesAndLabels(imagesFile, labelsFile),
      labelsFile,
      new RegExp(`holds 4 labels but its image file .*images holds 5 images`),
    );
  });
});
