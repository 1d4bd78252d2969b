// JSON request bodies against their operation's compiled schema, as both request layers need
// them: read whole (enforce: validated before the request goes on, bounded by maxBodySize),
// or watched as they stream to the app (shadow: no added latency). Light on purpose (types
// only from Ajv): the spec loader and compiler are loaded only when a spec is configured.

import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import type { ValidateFunction } from 'ajv';
import type { BodyBudget } from './body-budget.js';
import { describeAjvError, MAX_QUOTED, tooLarge, type Violation } from './violations.js';
import { duplicateKey } from './duplicate-keys.js';
import { inexactOf, longNumberTokens, roundedNote, withNeighbours, type InexactNumber } from './number-precision.js';
import { numbersSent, type NumbersSent } from './int64-range.js';
import { clip } from '../clip.js';

/**
 * How deep a body's arrays and objects may nest. Ajv's checks recurse (uniqueItems compares
 * items with a recursive deep-equal): 20,000 levels in an 80 KB body overflowed the stack, and
 * the RangeError, thrown in a stream's 'end' listener, ended the process.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * What a body is held to once it came: its JSON schema, or only that it be empty (a body
 * that came with no Content-Type the operation accepts, and no length to say it has bytes:
 * spec.ts), refused with `emptyOnly` if a byte comes.
 */
export type BodyCheck = ValidateFunction | { readonly emptyOnly: Violation };

/** How many bytes of the body to read for `check`: one past none, for a body that must be empty. */
export function readLimit(check: BodyCheck, maxBodySize: number): number {
  return typeof check === 'function' ? maxBodySize : 0;
}

/** The violation of a body that outgrew readLimit(check, maxBodySize). */
export function outgrown(check: BodyCheck, maxBodySize: number): Violation {
  return typeof check === 'function' ? tooLarge(maxBodySize) : check.emptyOnly;
}

/**
 * A body as it came, judged: zero bytes are no body, as when none was announced (spec.ts):
 * refused as missing when the operation requires one, else passed. A body announced by
 * chunked framing or an open HTTP/2 stream and then empty (Node's http2 client ends a POST so)
 * was judged as JSON and refused, `is not valid JSON`, where body-parser reads `{}`.
 */
export function checkSentBody(check: BodyCheck, body: Buffer, required: boolean): Violation | undefined {
  if (body.length === 0) return required ? { kind: 'body', message: 'body: is required' } : undefined;
  return typeof check === 'function' ? checkJsonBody(check, body) : check.emptyOnly;
}

/** Validates a buffered JSON body; undefined when it passes. Never throws. */
export function checkJsonBody(validate: ValidateFunction, body: Buffer): Violation | undefined {
  if (nestsDeeperThan(body, MAX_JSON_DEPTH)) return { kind: 'body', message: `body: nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels` };
  // decoding would turn bad bytes into U+FFFD: the app may read the raw bytes otherwise
  if (!isUtf8(body)) return { kind: 'body', message: 'body: is not valid UTF-8' };
  let value: unknown;
  const text = body.toString('utf8');
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8's message quotes a piece of the body (which may hold a secret): the position alone
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    return { kind: 'body', message: `body: is not valid JSON${at === undefined ? '' : ` (at position ${at})`}` };
  }
  // every number a double may not hold: 16 characters or more, or an exponent
  const tokens = longNumberTokens(text);
  // a number too large for a double parses as Infinity, which Ajv takes for an integer and
  // any `minimum`: JSON has no such number, and the app reads the digits as sent. Read from the
  // tokens, as JSON.parse reads them: the expression this replaced (an exponent of three digits,
  // or 309 digits in a row) missed 250 digits and e99, and took ~0.5 s on 1 MiB of 308-digit runs
  if (tokens.some((token) => !Number.isFinite(Number(token.text)))) return { kind: 'body', message: 'body: holds a number too large for a double (beyond ±1.8e308)' };
  // parsers disagree on which of two values of one key counts (duplicate-keys.ts)
  const twice = duplicateKey(body);
  if (twice !== undefined) return { kind: 'body', message: `body: the key ${clip(JSON.stringify(twice), MAX_QUOTED)} is given twice in one object (parsers disagree on which value counts)` };
  try {
    // what the int64 range check reads of the numbers as sent (int64-range.ts)
    const sent = numbersSent(tokens.map((token) => token.text));
    if (!validate.call(sent, value)) return { kind: 'body', message: describeAjvError('body', validate.errors?.[0]) };
    const inexact = inexactOf(tokens);
    return inexact.length === 0 ? undefined : checkRounded(validate, text, inexact, sent);
  } catch {
    // a check that cannot finish on this value is a refusal, never the process's end
    return { kind: 'body', message: 'body: could not be validated against its schema' };
  }
}

/**
 * A body holding numbers no double holds as sent passes only if it passes with each of them
 * read as the double below it and as the one above (number-precision.ts says why).
 */
function checkRounded(validate: ValidateFunction, text: string, inexact: readonly InexactNumber[], sent: NumbersSent): Violation | undefined {
  for (const side of ['below', 'above'] as const) {
    if (validate.call(sent, JSON.parse(withNeighbours(text, inexact, side)))) continue;
    return { kind: 'body', message: describeAjvError('body', validate.errors?.[0]) + roundedNote(inexact, side) };
  }
  return undefined;
}

/** Whether the JSON text opens more than `max` arrays or objects at once (brackets inside strings do not count). */
export function nestsDeeperThan(body: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i] as number;
    if (inString) {
      if (byte === 0x5c) i++; // a backslash: the next byte is escaped
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > max) return true;
    } else if (byte === 0x5d || byte === 0x7d) depth--;
  }
  return false;
}

/**
 * Shadow: validates the body as it streams by, setting `result.violation` when it ends (or
 * once it outgrows what is read of it: readLimit). The source is paused first, so the listener does not start the
 * flow before the forwarder pipes it (pipe() resumes it). Past the budget the body goes on
 * unwatched (nothing is recorded of it). `caller`: whose share of the budget it counts against (body-budget.ts).
 */
export function watchBody(source: Readable, maxBodySize: number, budget: BodyBudget, check: BodyCheck, required: boolean, result: { violation: Violation | undefined }, caller?: string): void {
  const body = new BodyBuffer(readLimit(check, maxBodySize), budget, caller);
  source.pause();
  const stop = () => {
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('close', stop);
    body.clear();
  };
  const onData = (chunk: Buffer) => {
    const added = body.add(chunk);
    if (added === ADDED) return;
    if (added === TOO_LARGE) result.violation = outgrown(check, maxBodySize);
    stop();
  };
  const onEnd = () => {
    result.violation = checkSentBody(check, body.bytes(), required);
    stop();
  };
  source.on('data', onData);
  source.on('end', onEnd);
  // a body abandoned before its end gives its bytes back too
  source.on('close', stop);
}

/**
 * Enforce: the whole body (`done(body)`), or `done(undefined, why)` once it outgrows `limit`
 * or the budget (the rest is not kept). Nothing is called for a body abandoned before its end
 * (its bytes go back to the budget). `onChunk`: bytes came. Returns a function that gives up
 * the read (nothing more is kept, nothing is called, its bytes go back to the budget at once):
 * the caller's deadline for a body that stopped coming. `caller`: whose share of the budget it
 * counts against (body-budget.ts).
 */
export function readAll(
  source: Readable,
  limit: number,
  budget: BodyBudget,
  done: (body: Buffer | undefined, why?: 'too_large' | 'overloaded') => void,
  onChunk?: (bytes: number) => void,
  caller?: string,
): () => void {
  const body = new BodyBuffer(limit, budget, caller);
  const stop = () => {
    source.off('data', onData);
    source.off('end', onEnd);
    source.off('close', stop);
    body.clear();
  };
  const onData = (chunk: Buffer) => {
    onChunk?.(chunk.length);
    const added = body.add(chunk);
    if (added === ADDED) return;
    stop();
    done(undefined, added === TOO_LARGE ? 'too_large' : 'overloaded');
  };
  const onEnd = () => {
    const bytes = body.bytes();
    stop(); // the budget counts bodies being read; this one is handed over whole
    done(bytes);
  };
  source.on('data', onData);
  source.on('end', onEnd);
  source.on('close', stop);
  return stop;
}

const ADDED = 0;
const TOO_LARGE = 1;
const OVER_BUDGET = 2;

/**
 * A body collected into one buffer that doubles as it fills (never past `limit`), not a list
 * of the chunks: a peer that sends its body as 1-byte HTTP/2 frames would otherwise cost a
 * Buffer object (~100 bytes of heap) per byte, up to the limit.
 */
class BodyBuffer {
  private buffer: Buffer | null = null;
  private size = 0;

  constructor(
    private readonly limit: number,
    private readonly budget: BodyBudget,
    /** Whose body it is (an inbound caller's SPIFFE ID), for its share of the budget; undefined on the outbound. */
    private readonly caller: string | undefined,
  ) {}

  /** ADDED, or TOO_LARGE / OVER_BUDGET (the chunk is not kept). */
  add(chunk: Buffer): number {
    const size = this.size + chunk.length;
    if (size > this.limit) return TOO_LARGE;
    let buffer = this.buffer;
    if (buffer === null || size > buffer.length) {
      // the budget counts what is allocated (a buffer grows by doubling), not only what is used
      const length = Math.min(this.limit, Math.max(size, 2 * (buffer?.length ?? 0), 1024));
      if (!this.budget.take(length - (buffer?.length ?? 0), this.caller)) return OVER_BUDGET;
      const grown = Buffer.allocUnsafe(length);
      if (buffer !== null) buffer.copy(grown, 0, 0, this.size);
      this.buffer = buffer = grown;
    }
    chunk.copy(buffer, this.size);
    this.size = size;
    return ADDED;
  }

  bytes(): Buffer {
    return this.buffer === null ? Buffer.alloc(0) : this.buffer.subarray(0, this.size);
  }

  /** Lets go of the bytes and gives them back to the budget (once). */
  clear(): void {
    this.budget.give(this.buffer?.length ?? 0, this.caller);
    this.buffer = null;
    this.size = 0;
  }
}
