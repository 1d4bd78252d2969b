// A stream the node codec's agent hands out through a promise may end before its attempt
// listens to it. Over the handshake gate's JS stream (tls-failures/gated-dial.ts) Node handles
// all the frames of one read in one go, with no turn of the loop between them: a GOAWAY read
// with the SETTINGS that let the stream be made (a peer ending each session as it opens it)
// refuses the stream, and its 'error' and 'close' come on the next ticks, before the promise's
// holder runs. An 'error' nobody hears ends the process, and an attempt that missed its stream's
// close would wait for its idle timeout: so the end is kept here from the stream's first moment
// and told to the attempt once it listens (listenToUpstream).

import type { EventEmitter } from 'node:events';

const kEarly = Symbol('meshcar.earlyStreamEnd');

interface EarlyEnd {
  error: Error | undefined;
  closed: boolean;
}

type Kept = EventEmitter & { [kEarly]?: EarlyEnd };

function keepError(this: Kept, err: Error): void {
  const kept = this[kEarly];
  if (kept !== undefined) kept.error ??= err;
}

function keepClose(this: Kept): void {
  const kept = this[kEarly];
  if (kept !== undefined) kept.closed = true;
}

/** Keeps the error and close `stream` may have before anyone listens (a listener stays on: the error is heard). */
export function keepEarlyEnd(stream: EventEmitter): void {
  (stream as Kept)[kEarly] = { error: undefined, closed: false };
  stream.on('error', keepError);
  stream.once('close', keepClose);
}

/**
 * Tells `onError` and `onClose` (called with the stream as `this`), on the next tick, what the
 * stream had before they listened: nothing for a stream that did not end early.
 */
export function replayEarlyEnd(stream: EventEmitter, onError: (this: EventEmitter, err: Error) => void, onClose: (this: EventEmitter) => void): void {
  const kept = (stream as Kept)[kEarly];
  if (kept === undefined || (kept.error === undefined && !kept.closed)) return;
  (stream as Kept)[kEarly] = undefined;
  process.nextTick(() => {
    if (kept.error !== undefined) onError.call(stream, kept.error);
    if (kept.closed) onClose.call(stream);
  });
}
