// The outbound OpenAPI layer: the app's call to an upstream that has `openapi:` configured is
// held against that upstream's spec before it leaves (operation, path, query, headers,
// content type, JSON body). enforce: a violation is answered here with the JSON error and
// never reaches the upstream; a JSON body is read first (up to maxBodySize, else 413; no byte
// for the upstream's idleTimeout, 408: schema-body-read.ts) and then sent as one piece, with
// the trailers that came during the read (an h2c app's: see Forward).
// shadow: the call leaves at once, streaming; its JSON body is validated as it goes by and
// the result recorded when it ends. Every call is held, whatever
// its Content-Type claims (a gRPC method is a POST operation of the spec; its framed body is
// never a JSON document, so it is not read under its own type's entry: operation.ts
// isGrpcType), and so is a WebSocket upgrade's head.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { describeError, MeshcarError, type ErrorCode } from '../errors.js';
import { announcesBody } from '../http/body-framing.js';
import { requestIdOf } from '../http/request-id.js';
import { errorBodyBytes, grpcAnswerType, grpcStatusFor, sendError, sendStreamError, statusFor } from '../http/status.js';
import { isGrpcRequest } from '../http/grpc-status.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { splitTarget, type SchemaGuard } from '../schema/guard.js';
import { checkSentBody, outgrown, readAll, readLimit, watchBody } from '../schema/json-body.js';
import { ERROR_OF, OVER_BUDGET, tooLarge as tooLargeViolation, type Violation } from '../schema/violations.js';
import { Exchange, type OutboundContext } from './exchange.js';
import { parseRequestTarget } from './router.js';
import { BodyRead } from './schema-body-read.js';
import { wasReset } from './upstream-stream.js';

// RST_STREAM(NO_ERROR): stop sending, without error (RFC 9113 §8.1)
const NGHTTP2_NO_ERROR = 0;

/**
 * Forwards the call: with what the check found, and the body when it was read here, with the
 * trailers that came as an event while it was (an h2c app's; an HTTP/1.1 app's stay on its request).
 */
export type Forward = (schema: SchemaResult | undefined, preread?: Buffer, prereadTrailers?: IncomingHttpHeaders) => void;

/** One app call, whatever its protocol: what the check needs, and how to answer or continue it. */
interface AppCall {
  readonly authority: string | undefined;
  readonly method: string;
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
  readonly hasBody: boolean;
  readonly body: Readable;
  /**
   * Answers with the JSON error; `done` once the answer is over (for the record). `endBody`: the
   * rest of the app's body will not come (it stopped): the exchange ends with the answer
   * (HTTP/1.1: the connection closes; h2c: RST_STREAM NO_ERROR after it, RFC 9113 §8.1).
   */
  refuse(error: MeshcarError, requestId: string, done: () => void, endBody: boolean): void;
  /** Sends 100 Continue (the body is about to be read here). */
  sendContinue(): void;
  /**
   * The body ended because the app reset its stream, not with END_STREAM (Node pushes an end
   * then): what was read is not the whole body and must neither be validated nor forwarded.
   */
  cutShort(): boolean;
}

function screen(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, call: AppCall, forward: Forward): void {
  const pool = ctx.router.lookup(call.authority);
  const guard = pool === undefined ? undefined : guards.get(pool.name);
  if (pool === undefined || guard === undefined) {
    forward(undefined);
    return;
  }
  const startedMs = performance.now();
  const [path, query] = splitTarget(call.target);
  const check = guard.spec.check(call.method, path, query, call.headers, call.hasBody);
  const schema: { route: string | undefined; violation: Violation | undefined } = { route: check.route, violation: check.violation };
  /** Body bytes read for the check: a call that ends here counts them (one sent on is counted as it is replayed). */
  let bytesRead = 0;
  /** The one record of a call that ends here (refused, or the app gone); `code` undefined: the app went away (499). */
  const record = (code: ErrorCode | undefined) => {
    const exchange = new Exchange(ctx, call.method, requestIdOf(call.headers), startedMs);
    exchange.peer = pool.name;
    exchange.path = path;
    exchange.schema = schema;
    exchange.bytesIn = bytesRead;
    exchange.errorCode = code;
    if (code !== undefined) exchange.status = statusFor(code);
    // a gRPC call gets the refusal as a gRPC status (refuse() below)
    if (code !== undefined && isGrpcRequest(call.headers['content-type'])) exchange.grpcStatus = grpcStatusFor(code);
    return exchange;
  };
  const refuse = (violation: Violation, code = ERROR_OF[violation.kind], endBody = false) => {
    const exchange = record(code);
    const error = new MeshcarError(code, violation.message);
    exchange.bytesOut = errorBodyBytes(error, exchange.requestId, grpcAnswerType(call.headers['content-type']), call.method);
    call.refuse(error, exchange.requestId, () => exchange.finish(), endBody);
  };
  if (check.violation !== undefined) {
    if (guard.mode === 'enforce') refuse(check.violation);
    else forward(schema);
    return;
  }
  const validate = check.body;
  const required = check.operation?.body?.required === true;
  if (validate === undefined) {
    forward(schema);
    return;
  }
  const tooLarge = tooLargeViolation(guard.maxBodySize);
  if (guard.mode === 'shadow') {
    watchBody(call.body, guard.maxBodySize, guard.budget, validate, required, schema);
    forward(schema);
    return;
  }
  // a body over maxBodySize is a body violation (counted, logged) as on the inbound and in shadow mode
  const refuseTooLarge = () => {
    schema.violation = tooLarge;
    refuse(tooLarge, 'body_too_large');
  };
  if (Number(call.headers['content-length']) > guard.maxBodySize) {
    refuseTooLarge();
    return;
  }
  if (call.headers.expect !== undefined && call.headers.expect.toLowerCase() === '100-continue') {
    call.sendContinue();
    // continued here: the upstream is not asked again (the forwarder would relay a second 100)
    delete call.headers.expect;
  }
  // bounded by the upstream's idleTimeout and counted in flight until forwarded (schema-body-read.ts)
  const read = new BodyRead(ctx.activity, pool.idleTimeoutMs, (quiet) => {
    // the app stopped sending: its bytes go back to the budget now, not when it goes away
    giveUp();
    const message = `the request body stopped coming: no byte for ${quiet.idleMs} ms (the upstream's idleTimeout) while it was read for the OpenAPI check`;
    quiet.finish(() => refuse({ kind: 'body', message }, 'request_timeout', true));
  });
  // gone before its end: nothing is forwarded or answered, but the call is recorded (499)
  call.body.once('close', () => read.finish(() => record(undefined).finish()));
  // an h2c app's trailers come during the read, before its end: the forwarder, later, would miss them
  let trailers: IncomingHttpHeaders | undefined;
  call.body.once('trailers', (fields: IncomingHttpHeaders) => (trailers = fields));
  const giveUp = readAll(
    call.body,
    readLimit(validate, guard.maxBodySize),
    guard.budget,
    (body, why) =>
      read.finish(() => {
        // the app broke off: a valid prefix must not go upstream as a whole body (nor a broken one be judged)
        if (why === undefined && call.cutShort()) return record(undefined).finish();
        if (why === 'overloaded') return refuse({ kind: 'body', message: OVER_BUDGET }, 'overloaded');
        if (body === undefined) {
          // past what is read: 413, or a byte where none may come (no Content-Type): its 415 (json-body.ts outgrown)
          const violation = outgrown(validate, guard.maxBodySize);
          return violation.kind === 'body' ? refuseTooLarge() : refuse((schema.violation = violation));
        }
        const violation = checkSentBody(validate, body, required);
        if (violation !== undefined) {
          schema.violation = violation;
          refuse(violation);
        } else forward(schema, body, trailers);
      }),
    (bytes) => {
      bytesRead += bytes;
      read.moved();
    },
  );
}

/**
 * An Upgrade (WebSocket) from the app: its head is held like any call's (it has no body; the
 * upstream's app may answer it as an ordinary request). What the check found goes on the
 * tunnel's record; the error to fail it with in enforce mode, else undefined.
 */
export function checkUpgrade(guards: ReadonlyMap<string, SchemaGuard>, pool: string, req: IncomingMessage, target: string, exchange: Exchange): MeshcarError | undefined {
  const guard = guards.get(pool);
  if (guard === undefined) return undefined;
  const [path, query] = splitTarget(target);
  const check = guard.spec.check(req.method ?? 'GET', path, query, req.headers, false);
  exchange.schema = { route: check.route, violation: check.violation };
  if (check.violation === undefined || guard.mode !== 'enforce') return undefined;
  return new MeshcarError(ERROR_OF[check.violation.kind], check.violation.message);
}

/** An HTTP/1.1 call from the app. */
export function screenHttp1(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, req: IncomingMessage, res: ServerResponse, forward: Forward): void {
  const target = parseRequestTarget(req.url, req.method);
  screen(
    ctx,
    guards,
    {
      authority: target.authority ?? req.headers.host,
      method: req.method ?? 'GET',
      target: target.path,
      headers: req.headers,
      hasBody: announcesBody(req.headers),
      body: req,
      refuse(error, requestId, done, endBody) {
        res.on('close', done);
        // the body's rest would be waited for before the next request: the connection goes instead
        if (endBody) res.setHeader('connection', 'close');
        // a gRPC call (now held like any other) gets its refusal as a gRPC status, as from the forwarders
        sendError(res, error, { requestId, grpcType: grpcAnswerType(req.headers['content-type']) });
      },
      sendContinue: () => res.writeContinue(),
      // an aborted HTTP/1.1 body never ends: 'close' comes instead
      cutShort: () => false,
    },
    forward,
  );
}

/** An h2c stream from the app. */
export function screenH2c(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, forward: Forward): void {
  const path = headers[':path'] as string | undefined;
  if (path === undefined) {
    forward(undefined);
    return;
  }
  screen(
    ctx,
    guards,
    {
      authority: (headers[':authority'] as string | undefined) ?? headers.host,
      method: (headers[':method'] as string | undefined) ?? 'GET',
      target: path,
      headers,
      hasBody: !stream.endAfterHeaders,
      body: stream,
      refuse(error, requestId, done, endBody) {
        stream.on('close', done);
        // the app's upload (if any) is not wanted: read and drop it so the stream can complete
        stream.resume();
        const fault = sendStreamError(stream, error, requestId, grpcAnswerType(headers['content-type']));
        if (fault !== undefined) ctx.logger.error({ code: error.code, err: describeError(fault) }, 'the error answer could not be sent (the stream was reset instead)');
        // a body that stopped never ends the stream: closed once the answer is out (Node sends
        // a NO_ERROR reset after the stream's last frame), else it and its record waited for ever
        else if (endBody && !stream.destroyed && !stream.readableEnded) stream.close(NGHTTP2_NO_ERROR);
      },
      sendContinue: () => stream.additionalHeaders({ ':status': 100 }),
      // as forward-h2c.ts tells a reset from an end (a NO_ERROR reset mid-body marks the stream aborted)
      cutShort: () => stream.aborted || wasReset(stream.rstCode),
    },
    forward,
  );
}
