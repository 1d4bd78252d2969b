// The process logger: pino, JSON lines on stdout. Built once by the command that runs and
// passed down; nothing below imports a global logger.

import { pino, type Logger } from 'pino';

export function createLogger(level: string, name = 'meshcar'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // secrets never belong in a log line, even by accident through an error object
    redact: { paths: ['token', '*.token', 'privateKey', '*.privateKey', 'key', 'authorization', '*.authorization'], censor: '[redacted]' },
  });
}
