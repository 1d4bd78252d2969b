// The inbound OpenAPI layer: after authorization and rate limits, before the app. The request
// head is held against the spec (operation, path, query, headers, content type); when the
// matched operation has a JSON body schema, the body is read (up to maxBodySize), validated,
// and then replayed to the app. Everything else goes on at once, streaming as before.
// enforce: a violation is answered here (404/400/415/413) and the app never sees the request;
// shadow: it is only recorded (metric, access log, /endpoints) and the request goes on as is.
// gRPC and WebSocket requests pass unchecked (their bodies are streams, not JSON documents).

import { PassThrough } from 'node:stream';
import { checkJsonBody } from '../schema/json-body.js';
import { splitTarget, type SchemaGuard } from '../schema/guard.js';
import { ERROR_OF, tooLarge as tooLargeViolation, type Violation } from '../schema/violations.js';
import { DONE, type Exchange } from './exchange.js';

/** Whether the schema check applies: not to gRPC (a stream of messages). */
function isChecked(exchange: Exchange): boolean {
  const type = exchange.requestHeaders['content-type'];
  return type === undefined || !type.startsWith('application/grpc');
}

/**
 * Checks the request; calls `next(exchange)` when it may go to the app (at once, or after its
 * body was read and validated). In enforce mode a violation is answered here instead.
 */
export function screenRequest(exchange: Exchange, guard: SchemaGuard, next: (exchange: Exchange) => void): void {
  if (!isChecked(exchange)) {
    next(exchange);
    return;
  }
  const [path, query] = splitTarget(exchange.target);
  const check = guard.spec.check(exchange.method, path, query, exchange.requestHeaders, exchange.requestHasBody);
  const route = check.operation?.template;
  if (check.violation !== undefined || check.body === undefined) {
    exchange.schema = { route, violation: check.violation };
    if (check.violation !== undefined && guard.mode === 'enforce') refuse(exchange, check.violation);
    else next(exchange);
    return;
  }
  const validate = check.body;
  readBody(exchange, guard.maxBodySize, (body, tooLarge) => {
    if (exchange.phase === DONE) return; // timed out or the caller left while the body came
    const violation: Violation | undefined = tooLarge ? tooLargeViolation(guard.maxBodySize) : checkJsonBody(validate, body as Buffer);
    exchange.schema = { route, violation };
    if (violation !== undefined && guard.mode === 'enforce') {
      if (tooLarge) exchange.fail('body_too_large', violation.message);
      else refuse(exchange, violation);
      return;
    }
    next(exchange);
  });
}

function refuse(exchange: Exchange, violation: Violation): void {
  exchange.fail(ERROR_OF[violation.kind], violation.message);
}

/**
 * Reads the caller's body into memory, then sets it as the exchange's body for the app. Past
 * `limit` it stops keeping: `done(undefined, true)`, and the exchange's body becomes what was
 * read followed by the rest of the caller's stream (shadow mode forwards it whole).
 */
function readBody(exchange: Exchange, limit: number, done: (body: Buffer | undefined, tooLarge: boolean) => void): void {
  const source = exchange.requestBody;
  const declared = Number(exchange.requestHeaders['content-length']);
  if (declared > limit) {
    done(undefined, true);
    return;
  }
  // the caller waits for 100 Continue before it sends the body we are about to read
  if (exchange.expectsContinue) exchange.continue();
  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    exchange.touch();
    size += chunk.length;
    chunks.push(chunk);
    if (size > limit) {
      stop();
      source.pause();
      const replay = new PassThrough();
      for (const c of chunks) replay.write(c);
      source.pipe(replay);
      source.resume();
      exchange.bodyReplacement = replay;
      done(undefined, true);
    }
  };
  const onEnd = () => {
    stop();
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    exchange.bodyReplacement = new PassThrough().end(body);
    done(body, false);
  };
  const stop = () => {
    source.off('data', onData);
    source.off('end', onEnd);
  };
  source.on('data', onData);
  source.on('end', onEnd);
}
