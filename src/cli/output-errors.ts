// A command's own output (help, a token, `ca status`, `check`'s verdict) that stdout refuses:
// its reader is gone (`meshcar ca status | head` after head quit: EPIPE), the disk of a file
// it goes to is full (ENOSPC), or another write error. Node emits that as an 'error' event on
// process.stdout after write() returned; with no listener it was an uncaught exception, a
// stack trace and exit 1, while the command went on as if its output had been delivered.
// Here it is one line on stderr naming what was not written, and the command fails (exit 1):
// a join token printed nowhere is one a script must not believe it has. `run` and `ca serve`
// log through their own stream (src/logging.ts), which handles its errors itself.

let failure: NodeJS.ErrnoException | undefined;

/** What each code means to someone reading the line. */
const WHY: Record<string, string> = {
  EPIPE: 'its reader closed it',
  ENOSPC: 'no space left on the device it goes to',
  EBADF: 'it is not open for writing',
};

/** Listens for write errors of stdout and stderr; call once, before any output. */
export function watchOutput(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (failure) return;
    failure = err;
    const why = WHY[err.code ?? ''] ?? err.message;
    // stderr may be gone too (both piped into one reader): then there is nowhere to say it
    process.stderr.write(`meshcar: could not write the command's output to stdout (${err.code ?? 'error'}: ${why}); it was not delivered\n`);
    // the command may already have finished and set its status: a failed output overrides a 0
    if (!process.exitCode) process.exitCode = 1;
  });
  // nothing left to report a failed stderr to; without a listener it would throw a stack trace
  // into that same closed stderr, and replace the command's exit status with an uncaught error's
  process.stderr.on('error', () => undefined);
}

/** The exit status to end with: `status`, or 1 when the output did not reach stdout and `status` said success. */
export function exitStatus(status: number): number {
  return failure && status === 0 ? 1 : status;
}
