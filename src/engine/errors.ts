/**
 * An error caused by the user's input (a model file, a dataset, an argument), as opposed to a bug.
 * The CLI prints it as one line, `pas: FILE: MESSAGE`, and exits with code 2; the extension shows
 * it in the panel or inspector. Anything else that escapes is a bug and exits with code 1.
 */
export class PasInputError extends Error {
  constructor(message: string, readonly file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'PasInputError';
  }

  /** The message without the file prefix. */
  get reason(): string {
    return this.file ? this.message.slice(this.file.length + 2) : this.message;
  }
}

export function isPasInputError(error: unknown): error is PasInputError {
  return error instanceof PasInputError;
}
