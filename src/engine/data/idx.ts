/**
 * Reading and writing IDX files, the format of MNIST and Fashion-MNIST
 * (http://yann.lecun.com/exdb/mnist/): two zero bytes, a dtype byte, a dimension count byte,
 * one big-endian uint32 per dimension, then the values in row-major order. Files may be gzipped.
 * Only unsigned bytes (dtype 0x08) are supported, which is what image and label files use.
 */
import { promises as fs } from 'fs';
import { promisify } from 'util';
import * as zlib from 'zlib';
import { PasInputError } from '../errors';
import { allInOrder } from './settle';

const gunzip = promisify(zlib.gunzip);

const UNSIGNED_BYTE = 0x08;
const DTYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

/** An IDX array of unsigned bytes: its dimensions and its values in row-major order. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Images read from an IDX file of shape [count, height, width], one grayscale byte per pixel. */
export interface IdxImages {
  count: number;
  height: number;
  width: number;
  pixels: Uint8Array;
}

/** Labels read from an IDX file of shape [count]. */
export interface IdxLabels {
  count: number;
  labels: Uint8Array;
}

/** True when the bytes start with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses IDX bytes (already decompressed). `file` only names the source in error messages.
 * Throws PasInputError when the magic number, dtype or size is wrong.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.length < 4) {
    throw new PasInputError(`the file holds ${bytes.length} bytes, too few for an IDX header (at least 4)`, file);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new PasInputError(
      `not an IDX file: it starts with bytes ${magic}, but an IDX file starts with 00 00, a dtype byte and a dimension count`,
      file,
    );
  }
  const dtype = bytes[2];
  if (dtype !== UNSIGNED_BYTE) {
    const dtypeName = DTYPE_NAMES[dtype] ?? 'an unknown dtype';
    throw new PasInputError(
      `IDX dtype byte is 0x${dtype.toString(16).padStart(2, '0')} (${dtypeName}); only unsigned byte (0x08) images and labels are supported`,
      file,
    );
  }
  const rank = bytes[3];
  if (rank === 0) throw new PasInputError('IDX header declares 0 dimensions', file);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new PasInputError(
      `IDX header declares ${rank} dimensions (a ${headerBytes}-byte header) but the file holds only ${bytes.length} bytes`,
      file,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expectedBytes = dims.reduce((product, dim) => product * dim, 1);
  const actualBytes = bytes.length - headerBytes;
  if (actualBytes !== expectedBytes) {
    throw new PasInputError(
      `IDX header says shape [${dims.join(', ')}] (${expectedBytes} bytes of data) but the file holds ${actualBytes} bytes of data after the header` +
        (actualBytes < expectedBytes ? '; the file is truncated or the header is wrong' : '; the header is wrong or extra bytes follow'),
      file,
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
}

/** Reads an IDX file, gunzipping it first when it starts with the gzip magic number. */
export async function readIdxFile(file: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    throw new PasInputError(`cannot read the file: ${(error as Error).message}`, file);
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzip(bytes);
    } catch (error) {
      throw new PasInputError(`the file starts like gzip but does not decompress: ${(error as Error).message}`, file);
    }
  }
  return parseIdx(bytes, file);
}

/** Reads an IDX image file of shape [count, height, width]. */
export async function readIdxImages(file: string): Promise<IdxImages> {
  const { dims, data } = await readIdxFile(file);
  if (dims.length !== 3) {
    throw new PasInputError(
      `expected IDX images of shape [count, height, width] but the header says shape [${dims.join(', ')}]`,
      file,
    );
  }
  const [count, height, width] = dims;
  if (height === 0 || width === 0) throw new PasInputError(`IDX images are ${height}x${width}, which is empty`, file);
  return { count, height, width, pixels: data };
}

/**
 * Reads an IDX label file of shape [count]. When `numClasses` is given every label must be
 * below it.
 */
export async function readIdxLabels(file: string, numClasses?: number): Promise<IdxLabels> {
  const { dims, data } = await readIdxFile(file);
  if (dims.length !== 1) {
    throw new PasInputError(`expected IDX labels of shape [count] but the header says shape [${dims.join(', ')}]`, file);
  }
  if (numClasses !== undefined) {
    const badIndex = data.findIndex((label) => label >= numClasses);
    if (badIndex >= 0) {
      throw new PasInputError(
        `label ${data[badIndex]} at index ${badIndex} is out of range: the dataset has ${numClasses} classes (labels 0..${numClasses - 1})`,
        file,
      );
    }
  }
  return { count: dims[0], labels: data };
}

/**
 * Reads an image file and its label file, and checks that they hold the same number of examples.
 */
export async function readIdxImagesAndLabels(
  imagesFile: string,
  labelsFile: string,
  numClasses?: number,
): Promise<{ images: IdxImages; labels: IdxLabels }> {
  const [images, labels] = await allInOrder([readIdxImages(imagesFile), readIdxLabels(labelsFile, numClasses)] as const);
  if (images.count !== labels.count) {
    throw new PasInputError(
      `the label file holds ${labels.count} labels but its image file ${imagesFile} holds ${images.count} images; they must match one to one`,
      labelsFile,
    );
  }
  return { images, labels };
}

/** Encodes unsigned bytes of the given shape as an IDX file, gzipped when asked. */
export function encodeIdx(dims: number[], data: Uint8Array, options: { gzip: boolean }): Buffer {
  const expected = dims.reduce((product, dim) => product * dim, 1);
  if (expected !== data.length) {
    throw new Error(`encodeIdx: shape [${dims.join(', ')}] needs ${expected} values, got ${data.length}`);
  }
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = UNSIGNED_BYTE;
  header[3] = dims.length;
  dims.forEach((dim, i) => header.writeUInt32BE(dim, 4 + 4 * i));
  const raw = Buffer.concat([header, data]);
  // Level 9 because these files are written once (sample data, fixtures) and read many times.
  return options.gzip ? zlib.gzipSync(raw, { level: 9 }) : raw;
}

/** Writes unsigned bytes of the given shape to an IDX file, gzipped when asked. */
export async function writeIdxFile(file: string, dims: number[], data: Uint8Array, options: { gzip: boolean }): Promise<void> {
  await fs.writeFile(file, encodeIdx(dims, data, options));
}
