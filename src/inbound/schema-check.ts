// The inbound OpenAPI layer: after authorization and rate limits, before the app. The request
// head is held against the spec (operation, path, query, headers, content type). enforce: a
// violation is answered here (404/400/415) and the app never sees the request; when the
// matched operation has a JSON body schema, the body is read first (up to maxBodySize, else
// 413), validated, and then replayed to the app; a body with no Content-Type and no length is
// read to its end or first byte (json-body.ts BodyCheck). shadow: nothing is refused or held back; a
// JSON body is validated as it streams to the app, and the violation only recorded (metric,
// access log, /endpoints). Everything else goes on at once, streaming as before. Every
// request is held, whatever its Content-Type or Upgrade claims: a header the caller picks
// decides nothing. gRPC methods are POST operations of the spec like any other; their
// framed bodies are never JSON documents, so under their own type's entry they stream unread
// (elsewhere application/grpc+json is JSON: see operation.ts isGrpcType). A body
// read here keeps its trailers: the caller's come on its own stream (or request), which the app
// forwarder no longer sees, so they are taken while reading (exchange.callerTrailers).

import type { IncomingHttpHeaders } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import { checkSentBody, outgrown, readAll, readLimit, watchBody } from '../schema/json-body.js';
import { splitTarget, type SchemaGuard } from '../schema/guard.js';
import { ERROR_OF, OVER_BUDGET, tooLarge, type Violation } from '../schema/violations.js';
import { DONE, type Exchange } from './exchange.js';
import { touch } from './exchange-deadlines.js';
import { bindExchange, exchangeOf } from './exchange-links.js';

/**
 * Checks the request; calls `next(exchange)` when it may go to the app (at once, or after its
 * body was read and validated). In enforce mode a violation is answered here instead.
 */
export function screenRequest(exchange: Exchange, guard: SchemaGuard, next: (exchange: Exchange) => void): void {
  const [path, query] = splitTarget(exchange.target);
  const check = guard.spec.check(exchange.method, path, query, exchange.requestHeaders, exchange.requestHasBody);
  const schema: { route: string | undefined; violation: Violation | undefined } = { route: check.route, violation: check.violation };
  exchange.schema = schema;
  const validate = check.body;
  const required = check.operation?.body?.required === true;
  if (check.violation !== undefined || validate === undefined || guard.mode === 'shadow') {
    if (check.violation !== undefined && guard.mode === 'enforce') refuse(exchange, check.violation);
    else {
      if (check.violation === undefined && validate !== undefined) watchBody(exchange.requestBody, guard.maxBodySize, guard.budget, validate, required, schema, exchange.caller.id.uri);
      next(exchange);
    }
    return;
  }
  // enforce, with a JSON body schema: the body is read and validated before the app sees it
  if (Number(exchange.requestHeaders['content-length']) > guard.maxBodySize) {
    schema.violation = tooLarge(guard.maxBodySize);
    exchange.fail('body_too_large', schema.violation.message);
    return;
  }
  // the caller waits for 100 Continue before it sends the body we are about to read
  if (exchange.expectsContinue) exchange.continue();
  // the body the app gets is a replay of what is read here: an HTTP/2 caller's trailers come as
  // an event on its stream during this read, before its end (an h2c app sends them on)
  const original = exchange.requestBody;
  bindExchange(original, exchange);
  original.on('trailers', onCallerTrailers);
  // the bytes read count as they come (a caller that stalls or leaves mid-body is recorded with
  // them); a body sent on is counted again as it is replayed, so they are taken back then
  let bytesRead = 0;
  readAll(
    original,
    readLimit(validate, guard.maxBodySize),
    guard.budget,
    (body, why) => {
      if (exchange.phase === DONE) return; // timed out, or the caller left while the body came
      if (why === 'overloaded') {
        exchange.fail('overloaded', OVER_BUDGET);
        return;
      }
      const violation = body === undefined ? outgrown(validate, guard.maxBodySize) : checkSentBody(validate, body, required);
      schema.violation = violation;
      // past maxBodySize: 413; a byte where none may come (no Content-Type): its 415
      if (body === undefined && violation?.kind === 'body') exchange.fail('body_too_large', violation.message);
      else if (violation !== undefined) refuse(exchange, violation);
      else {
        // an HTTP/1.1 caller's trailers are on its request once its body ended
        if (exchange.callerTrailers === undefined) exchange.callerTrailers = (original as { trailers?: IncomingHttpHeaders }).trailers;
        exchange.bodyReplacement = new PassThrough().end(body);
        exchange.bytesIn -= bytesRead;
        next(exchange);
      }
    },
    (bytes) => {
      bytesRead += bytes;
      exchange.bytesIn += bytes;
      touch(exchange);
    },
    // one caller's bodies may not fill the budget for all (body-budget.ts)
    exchange.caller.id.uri,
  );
}

function onCallerTrailers(this: Readable, trailers: IncomingHttpHeaders): void {
  exchangeOf(this).callerTrailers = trailers;
}

function refuse(exchange: Exchange, violation: Violation): void {
  exchange.fail(ERROR_OF[violation.kind], violation.message);
}
