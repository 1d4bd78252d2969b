// What this process's log output shares with modules that must not load pino (the metrics
// registry, the command line): how many log lines were dropped because stdout did not take
// them (exported as meshcar_log_lines_dropped_total), and closing the output in bounded time
// before the process ends. src/logging.ts owns the output itself and reports here.

let dropped = 0;
let closer: ((deadline: number) => Promise<boolean>) | undefined;

/** A log line stdout could not take in time (the buffer was full, or the output was closed). */
export function logLineDropped(): void {
  dropped++;
}

/** Log lines dropped since the process started. */
export function logLinesDropped(): number {
  return dropped;
}

/** Set by src/logging.ts when the process's log output is opened. */
export function setLogCloser(close: (deadline: number) => Promise<boolean>): void {
  closer = close;
}

/**
 * Waits until every buffered log line is written, or until `deadline` (ms since the epoch);
 * lines still unwritten then are dropped. Resolves false when some were dropped: the process
 * must then end with process.exit, a write stdout never takes may hold the event loop open.
 */
export function closeLogs(deadline: number): Promise<boolean> {
  return closer ? closer(deadline) : Promise.resolve(true);
}
