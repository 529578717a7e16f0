/**
 * Crash-safe file writes: data goes to a temp file in the same folder, is fsynced, and is then
 * renamed over the target. rename(2) within one file system is atomic, so a reader (or a run
 * resumed after a crash or power loss) sees either the old complete file or the new one, never
 * a half-written file. Used for model folders, checkpoints and report.json.
 */
import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { PasInputError } from '../errors';
import { describeFsError } from './fsErrors';

/** Bytes or text accepted by the atomic writers. */
export type FileContents = string | Uint8Array | ArrayBuffer;

/** A suffix that two processes (or two calls in one process) will not both pick. */
export function uniqueTempSuffix(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

function toBytes(data: FileContents): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/**
 * Creates `filePath` (which must not exist), writes `data` and fsyncs it before closing, so that
 * a rename done afterwards never publishes a file whose contents are still only in the page cache.
 * Throws the raw Node error; callers add the context.
 */
export async function writeNewFileDurably(filePath: string, data: FileContents): Promise<void> {
  const handle = await fsp.open(filePath, 'wx', 0o644);
  try {
    await handle.writeFile(toBytes(data));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Fsyncs a folder so that renames and creations inside it survive a crash. Best effort: some
 * platforms (Windows) cannot open a folder for syncing, and the data itself is already durable.
 */
export async function syncFolder(folderPath: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(folderPath, 'r');
    await handle.sync();
  } catch {
    // Not supported here; the rename is still atomic, only its durability is weaker.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Writes `data` to `filePath` atomically: a temp file `.<name>.tmp-<pid>-<random>` in the same
 * folder is written and fsynced, then renamed over `filePath`, then the folder is fsynced.
 * On failure the temp file is removed and a {@link PasInputError} naming the file and the cause
 * (permission denied, no space left, missing folder, ...) is thrown; the old file is untouched.
 */
export async function writeFileAtomic(filePath: string, data: FileContents): Promise<void> {
  const target = path.resolve(filePath);
  const folder = path.dirname(target);
  const tempPath = path.join(folder, `.${path.basename(target)}.tmp-${uniqueTempSuffix()}`);
  try {
    await writeNewFileDurably(tempPath, data);
    await fsp.rename(tempPath, target);
  } catch (error) {
    await fsp.rm(tempPath, { force: true }).catch(() => undefined);
    throw new PasInputError(`cannot write the file: ${describeFsError(error)}`, filePath);
  }
  await syncFolder(folder);
}
