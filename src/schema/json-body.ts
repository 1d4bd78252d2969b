// JSON request bodies against their operation's compiled schema, as both request layers need
// them: read whole (enforce: validated before the request goes on, bounded by maxBodySize),
// or watched as they stream to the app (shadow: no added latency). Light on purpose (types
// only from Ajv): the spec loader and compiler are loaded only when a spec is configured.

import type { Readable } from 'node:stream';
import type { ValidateFunction } from 'ajv';
import { describeAjvError, tooLarge, type Violation } from './violations.js';

/** Validates a buffered JSON body; undefined when it passes. */
export function checkJsonBody(validate: ValidateFunction, body: Buffer): Violation | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    return { kind: 'body', message: `body: is not valid JSON (${(err as Error).message})` };
  }
  return validate(value) ? undefined : { kind: 'body', message: describeAjvError('body', validate.errors?.[0]) };
}

/**
 * Shadow: validates the body as it streams by, setting `result.violation` when it ends (or
 * once it outgrows `limit`). The source is paused first, so the listener does not start the
 * flow before the forwarder pipes it (pipe() resumes it).
 */
export function watchBody(source: Readable, limit: number, validate: ValidateFunction, result: { violation: Violation | undefined }): void {
  const chunks: Buffer[] = [];
  let size = 0;
  source.pause();
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) {
      result.violation = tooLarge(limit);
      source.off('data', onData);
      source.off('end', onEnd);
      chunks.length = 0;
    } else chunks.push(chunk);
  };
  const onEnd = () => {
    result.violation = checkJsonBody(validate, Buffer.concat(chunks, size));
  };
  source.on('data', onData);
  source.on('end', onEnd);
}

/** Enforce: the whole body, or undefined once it outgrows `limit` (the rest is not kept). `onChunk`: bytes came. */
export function readAll(source: Readable, limit: number, done: (body: Buffer | undefined) => void, onChunk?: () => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  const stop = () => {
    source.off('data', onData);
    source.off('end', onEnd);
  };
  const onData = (chunk: Buffer) => {
    onChunk?.();
    size += chunk.length;
    chunks.push(chunk);
    if (size > limit) {
      stop();
      done(undefined);
    }
  };
  const onEnd = () => {
    stop();
    done(Buffer.concat(chunks, size));
  };
  source.on('data', onData);
  source.on('end', onEnd);
}
