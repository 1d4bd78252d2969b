// What `meshcar doctor` reports: one result per check, with a status, a plain-words message that
// names what was expected and what was found, and the fix. Shared by every check module and
// the formatter; nothing here does I/O.

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  /** What was checked, e.g. `identity`, `ca https://127.0.0.1:8443`, `upstream payments 10.0.0.7:15443`. */
  readonly name: string;
  readonly status: CheckStatus;
  readonly message: string;
  /** What to do about a failure or warning. */
  readonly fix?: string;
  /** How many failures this one line stands for, when it counts the rest (`… and 50 more issues`). */
  readonly count?: number;
}

export const ok = (name: string, message: string): CheckResult => ({ name, status: 'ok', message });
export const warn = (name: string, message: string, fix?: string): CheckResult => ({ name, status: 'warn', message, ...(fix ? { fix } : {}) });
export const fail = (name: string, message: string, fix?: string): CheckResult => ({ name, status: 'fail', message, ...(fix ? { fix } : {}) });
export const skip = (name: string, message: string): CheckResult => ({ name, status: 'skip', message });

const MARK: Record<CheckStatus, string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };

/**
 * One line a terminal shows as written: messages quote what a peer sent (a foreign server's
 * body, an OpenSSL error), so line breaks become spaces and other control characters (an
 * escape sequence that recolours or rewrites the screen) are shown as \xNN; the bidirectional
 * overrides and the Unicode line separators (text shown in another order than written, or a
 * line broken where it is not: a ✗ that reads as ✓) as \uXXXX, as the log writes them.
 */
function printable(text: string): string {
  return text
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/** `✗ upstream payments 10.0.0.7:15443: peer is X, expected Y — fix: ...` */
export function formatResult(result: CheckResult): string {
  return printable(`${MARK[result.status]} ${result.name}: ${result.message}${result.fix ? ` — fix: ${result.fix}` : ''}`);
}

export function formatReport(results: readonly CheckResult[]): string {
  // a line that counts the rest stands for as many failures as it names
  const failed = results.reduce((sum, r) => sum + (r.status === 'fail' ? r.count ?? 1 : 0), 0);
  const summary = failed === 0 ? 'all checks passed' : `${failed} check${failed === 1 ? '' : 's'} failed`;
  return `${results.map(formatResult).join('\n')}\n${summary}\n`;
}

/** Milliseconds as a person reads them: `850 ms`, `12.3 s`, `5 h 12 min`, `3 d 4 h`. */
export function humanDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (abs < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  // whole units, rounded down: never "23 h 60 min"
  if (abs < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
  return `${Math.floor(ms / 86_400_000)} d ${Math.floor((ms % 86_400_000) / 3_600_000)} h`;
}
