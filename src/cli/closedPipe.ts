/**
 * A closed stdout or stderr (`pas inspect ... | head -n1`, a host that went away) ends the command
 * quietly with exit code 0, like other Unix tools: the reader has what it wanted.
 *
 * Node reports the closed pipe as an 'error' event on the stream; unhandled, it becomes an
 * uncaught `Error: write EPIPE` with a stack trace. Exiting runs the 'exit' handlers, so a search
 * still releases its output-folder lock, and every file it wrote is complete (atomic saves).
 */
export function endQuietlyOnClosedPipe(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') process.exit(0);
      throw error;
    });
  }
}
