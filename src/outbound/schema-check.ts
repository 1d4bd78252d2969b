// The outbound OpenAPI layer: the app's call to an upstream that has `openapi:` configured is
// held against that upstream's spec before it leaves (operation, path, query, headers,
// content type, JSON body). enforce: a violation is answered here with the JSON error and
// never reaches the upstream; a JSON body is read first (up to maxBodySize, else 413) and
// then sent as one piece. shadow: the call leaves at once, streaming; its JSON body is
// validated as it goes by and the result recorded when it ends. Every call is held, whatever
// its Content-Type claims (a gRPC method is a POST operation of the spec; its framed body is
// never a JSON document, see operation.ts), and so is a WebSocket upgrade's head.

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Readable } from 'node:stream';
import { describeError, MeshcarError } from '../errors.js';
import { announcesBody } from '../http/body-framing.js';
import { requestIdOf } from '../http/request-id.js';
import { grpcAnswerType, grpcStatusFor, sendError, sendStreamError, statusFor } from '../http/status.js';
import { isGrpcRequest } from '../http/grpc-status.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { splitTarget, type SchemaGuard } from '../schema/guard.js';
import { checkJsonBody, readAll, watchBody } from '../schema/json-body.js';
import { ERROR_OF, OVER_BUDGET, tooLarge as tooLargeViolation, type Violation } from '../schema/violations.js';
import { Exchange, type OutboundContext } from './exchange.js';
import { parseRequestTarget } from './router.js';

/** Forwards the call: with what the check found, and the body when it was read here. */
export type Forward = (schema: SchemaResult | undefined, preread?: Buffer) => void;

/** One app call, whatever its protocol: what the check needs, and how to answer or continue it. */
interface AppCall {
  readonly authority: string | undefined;
  readonly method: string;
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
  readonly hasBody: boolean;
  readonly body: Readable;
  /** Answers with the JSON error; `done` once the answer is over (for the record). */
  refuse(error: MeshcarError, requestId: string, done: () => void): void;
  /** Sends 100 Continue (the body is about to be read here). */
  sendContinue(): void;
}

function screen(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, call: AppCall, forward: Forward): void {
  const pool = ctx.router.lookup(call.authority);
  const guard = pool === undefined ? undefined : guards.get(pool.name);
  if (pool === undefined || guard === undefined) {
    forward(undefined);
    return;
  }
  const [path, query] = splitTarget(call.target);
  const check = guard.spec.check(call.method, path, query, call.headers, call.hasBody);
  const schema: { route: string | undefined; violation: Violation | undefined } = { route: check.operation?.template, violation: check.violation };
  const refuse = (violation: Violation, code = ERROR_OF[violation.kind]) => {
    // refused here: the one record of this call is made here too
    const exchange = new Exchange(ctx.observer, call.method, requestIdOf(call.headers));
    exchange.peer = pool.name;
    exchange.path = path;
    exchange.schema = schema;
    exchange.errorCode = code;
    exchange.status = statusFor(code);
    // a gRPC call gets the refusal as a gRPC status (refuse() below)
    if (isGrpcRequest(call.headers['content-type'])) exchange.grpcStatus = grpcStatusFor(code);
    call.refuse(new MeshcarError(code, violation.message), exchange.requestId, () => exchange.finish());
  };
  if (check.violation !== undefined) {
    if (guard.mode === 'enforce') refuse(check.violation);
    else forward(schema);
    return;
  }
  const validate = check.body;
  if (validate === undefined) {
    forward(schema);
    return;
  }
  const tooLarge = tooLargeViolation(guard.maxBodySize);
  if (guard.mode === 'shadow') {
    watchBody(call.body, guard.maxBodySize, guard.budget, validate, schema);
    forward(schema);
    return;
  }
  if (Number(call.headers['content-length']) > guard.maxBodySize) {
    refuse(tooLarge, 'body_too_large');
    return;
  }
  if (call.headers.expect !== undefined && call.headers.expect.toLowerCase() === '100-continue') {
    call.sendContinue();
    // continued here: the upstream is not asked again (the forwarder would relay a second 100)
    delete call.headers.expect;
  }
  readAll(call.body, guard.maxBodySize, guard.budget, (body, why) => {
    if (why === 'overloaded') return refuse({ kind: 'body', message: OVER_BUDGET }, 'overloaded');
    if (body === undefined) return refuse(tooLarge, 'body_too_large');
    const violation = checkJsonBody(validate, body);
    if (violation !== undefined) {
      schema.violation = violation;
      refuse(violation);
    } else forward(schema, body);
  });
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
  exchange.schema = { route: check.operation?.template, violation: check.violation };
  if (check.violation === undefined || guard.mode !== 'enforce') return undefined;
  return new MeshcarError(ERROR_OF[check.violation.kind], check.violation.message);
}

/** An HTTP/1.1 call from the app. */
export function screenHttp1(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, req: IncomingMessage, res: ServerResponse, forward: Forward): void {
  const target = parseRequestTarget(req.url);
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
      refuse(error, requestId, done) {
        res.on('close', done);
        // a gRPC call (now held like any other) gets its refusal as a gRPC status, as from the forwarders
        sendError(res, error, { requestId, grpcType: grpcAnswerType(req.headers['content-type']) });
      },
      sendContinue: () => res.writeContinue(),
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
      refuse(error, requestId, done) {
        stream.on('close', done);
        // the app's upload (if any) is not wanted: read and drop it so the stream can complete
        stream.resume();
        const fault = sendStreamError(stream, error, requestId, grpcAnswerType(headers['content-type']));
        if (fault !== undefined) ctx.logger.error({ code: error.code, err: describeError(fault) }, 'the error answer could not be sent (the stream was reset instead)');
      },
      sendContinue: () => stream.additionalHeaders({ ':status': 100 }),
    },
    forward,
  );
}
