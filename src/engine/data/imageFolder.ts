/**
 * Image-folder datasets: one subfolder per class, holding PNG or JPEG files.
 *
 * - Class indices are the subfolder names in code-unit order (`Array.prototype.sort`), so the
 *   mapping does not depend on the machine's locale.
 * - Files are found recursively inside each class folder.
 * - Only `.png`, `.jpg` and `.jpeg` (any case) are read. Other files are skipped rather than
 *   rejected, because real folders hold README files, thumbnails and `.DS_Store`; hidden files are
 *   skipped silently, the others are reported in `skipped` so the user can see them.
 * - The decoder is chosen by the file's first bytes, not its extension, so a JPEG named `.png`
 *   still loads; a file that decodes as neither is an error naming the file.
 */
import { Dirent, promises as fs } from 'fs';
import * as path from 'path';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { PasInputError } from '../errors';
import { writeImageAsFloats } from './imageOps';

/** File extensions read as images (lower case). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

/** One image file and the class it belongs to. */
export interface LabelledFile {
  file: string;
  classIndex: number;
}

/** The listing of an image folder, before any image is decoded. */
export interface ImageFolderListing {
  classNames: string[];
  files: LabelledFile[];
  /** Non-hidden files that were not read because their extension is not PNG or JPEG. */
  skipped: string[];
}

/** A decoded image as interleaved 8-bit RGBA. */
export interface DecodedImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

const MAX_SKIPPED_NAMES_IN_MESSAGE = 5;

/**
 * Lists an image folder. When `expectedClassNames` is given (a test folder next to a train
 * folder), its class indices are used and every subfolder must be one of them; a class may then
 * be missing. Without it, there must be at least two classes and each must hold an image.
 */
export async function listImageFolder(dir: string, expectedClassNames?: string[]): Promise<ImageFolderListing> {
  const entries = await readDirectory(dir);
  const classNames: string[] = [];
  for (const entry of entries) {
    if (!entry.name.startsWith('.') && (await entryIsDirectory(dir, entry))) classNames.push(entry.name);
  }
  classNames.sort();
  if (!expectedClassNames && classNames.length < 2) {
    throw new PasInputError(
      classNames.length === 0
        ? 'no class folders found: an image folder needs one subfolder per class, each holding PNG or JPEG images'
        : `only one class folder ('${classNames[0]}') found: classification needs at least 2 classes, one subfolder each`,
      dir,
    );
  }
  const indexOfClass = new Map((expectedClassNames ?? classNames).map((name, index) => [name, index]));
  const files: LabelledFile[] = [];
  const skipped: string[] = [];
  for (const className of classNames) {
    const classIndex = indexOfClass.get(className);
    const classDir = path.join(dir, className);
    if (classIndex === undefined) {
      throw new PasInputError(
        `class folder '${className}' has no matching class in the training folder (classes: ${expectedClassNames!.join(', ')})`,
        classDir,
      );
    }
    const classSkipped: string[] = [];
    const images = await findImageFiles(classDir, classSkipped);
    if (images.length === 0) {
      const others =
        classSkipped.length === 0
          ? 'it is empty'
          : `it holds only ${classSkipped.length} other file(s): ${describeFiles(classSkipped, classDir)}`;
      throw new PasInputError(`class folder '${className}' has no PNG or JPEG images (${others})`, classDir);
    }
    for (const file of images) files.push({ file, classIndex });
    skipped.push(...classSkipped);
  }
  return { classNames: expectedClassNames ?? classNames, files, skipped };
}

/** Describes skipped files briefly, for warnings and errors. */
export function describeFiles(files: string[], relativeTo: string): string {
  const names = files.slice(0, MAX_SKIPPED_NAMES_IN_MESSAGE).map((file) => path.relative(relativeTo, file));
  const more = files.length > names.length ? ` and ${files.length - names.length} more` : '';
  return names.join(', ') + more;
}

/** Decodes a PNG or JPEG file to RGBA; throws PasInputError naming the file when it cannot. */
export async function decodeImageFile(file: string): Promise<DecodedImage> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    throw new PasInputError(`cannot read the image: ${(error as Error).message}`, file);
  }
  return decodeImageBytes(bytes, file);
}

/** Decodes PNG or JPEG bytes to RGBA; `file` names the source in error messages. */
export function decodeImageBytes(bytes: Buffer, file: string): DecodedImage {
  const isPng = bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47;
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!isPng && !isJpeg) {
    const start = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new PasInputError(`corrupt or unsupported image: it starts with bytes ${start || '(none)'}, not a PNG or JPEG signature`, file);
  }
  try {
    if (isPng) {
      // pngjs always returns 8-bit RGBA, whatever the colour type and bit depth of the file.
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
    }
    const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
    if (decoded.width === 0 || decoded.height === 0) throw new Error('the image has no pixels');
    return { width: decoded.width, height: decoded.height, rgba: decoded.data };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new PasInputError(`corrupt ${isPng ? 'PNG' : 'JPEG'} image: ${reason}`, file);
  }
}

/**
 * Decodes `files` and writes them one after another into `target` as floats in [0, 1], converted
 * and resized to `shape` ([height, width, channels]).
 */
export async function loadImagesInto(files: string[], target: Float32Array, shape: [number, number, 1 | 3]): Promise<void> {
  const imageSize = shape[0] * shape[1] * shape[2];
  // A few reads in flight hide file-system latency without holding many decoded images at once.
  const concurrency = 8;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const index = next++;
      const image = await decodeImageFile(files[index]);
      writeImageAsFloats(image.rgba, [image.height, image.width, 4], target, index * imageSize, shape);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
}

async function readDirectory(dir: string) {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'the folder does not exist' : code === 'ENOTDIR' ? 'not a folder' : (error as Error).message;
    throw new PasInputError(reason, dir);
  }
}

/** Whether a directory entry is a folder, following symbolic links (a linked class folder counts). */
async function entryIsDirectory(dir: string, entry: Dirent): Promise<boolean> {
  if (!entry.isSymbolicLink()) return entry.isDirectory();
  return fs.stat(path.join(dir, entry.name)).then((stats) => stats.isDirectory(), () => false);
}

/** Image files under `dir`, recursively, in sorted order; other non-hidden files go to `skipped`. */
export async function findImageFiles(dir: string, skipped: string[]): Promise<string[]> {
  const entries = (await readDirectory(dir)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const images: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const entryPath = path.join(dir, entry.name);
    if (await entryIsDirectory(dir, entry)) {
      images.push(...(await findImageFiles(entryPath, skipped)));
    } else if (IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) {
      images.push(entryPath);
    } else {
      skipped.push(entryPath);
    }
  }
  return images;
}
