/**
 * Turns Node filesystem errors into the short cause a user can act on, so that messages read
 * "cannot write X: permission denied" instead of "EACCES: permission denied, open '...'".
 */

const CAUSE_BY_CODE: ReadonlyMap<string, string> = new Map([
  ['EACCES', 'permission denied'],
  ['EPERM', 'operation not permitted'],
  ['ENOSPC', 'no space left on the device'],
  ['EDQUOT', 'disk quota exceeded'],
  ['EROFS', 'the file system is read-only'],
  ['ENOENT', 'no such file or folder'],
  ['ENOTDIR', 'a part of the path is a file, not a folder'],
  ['EISDIR', 'it is a folder, not a file'],
  ['EEXIST', 'it already exists'],
  ['ENOTEMPTY', 'the folder is not empty'],
  ['EMFILE', 'too many open files'],
  ['ENAMETOOLONG', 'the path is too long'],
  ['ELOOP', 'too many levels of symbolic links'],
  ['EIO', 'input/output error'],
]);

/** The `code` of a Node system error (`'ENOENT'`, ...), or undefined for anything else. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A short human cause for a filesystem error, e.g. "permission denied (EACCES)". */
export function describeFsError(error: unknown): string {
  const code = errorCode(error);
  const cause = code ? CAUSE_BY_CODE.get(code) : undefined;
  if (cause && code) return `${cause} (${code})`;
  return error instanceof Error ? error.message : String(error);
}
