// The outbound OpenAPI layer: the app's call to an upstream that has `openapi:` configured is
// held against that upstream's spec before it leaves (operation, path, query, headers,
// content type). enforce: a violation is answered here with the JSON error and never reaches
// the upstream; shadow: it is recorded and the call goes on. gRPC calls and WebSocket
// upgrades pass unchecked. Request bodies are not validated on this side (see README).

import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { MeshcarError, type ErrorCode } from '../errors.js';
import { announcesBody } from '../http/body-framing.js';
import { requestIdOf } from '../http/request-id.js';
import { sendError, sendStreamError, statusFor } from '../http/status.js';
import type { SchemaResult } from '../metrics/traffic.js';
import { splitTarget, type SchemaGuard } from '../schema/guard.js';
import type { Violation } from '../schema/violations.js';
import { Exchange, type OutboundContext } from './exchange.js';
import { parseRequestTarget } from './router.js';

const ERROR_OF: Record<Violation['kind'], ErrorCode> = {
  undocumented_operation: 'undocumented_operation',
  path: 'schema_violation',
  query: 'schema_violation',
  header: 'schema_violation',
  content_type: 'unsupported_media_type',
  body: 'schema_violation',
};

/** The check's verdict: go on with `schema` recorded, or refused (already answered). */
type Verdict = { readonly refused: false; readonly schema: SchemaResult | undefined } | { readonly refused: true };

const UNCHECKED: Verdict = Object.freeze({ refused: false, schema: undefined });

function verdict(
  ctx: OutboundContext,
  guards: ReadonlyMap<string, SchemaGuard>,
  authority: string | undefined,
  method: string,
  target: string,
  headers: IncomingHttpHeaders,
  hasBody: boolean,
  refuse: (exchange: Exchange, error: MeshcarError) => void,
): Verdict {
  const pool = ctx.router.lookup(authority);
  const guard = pool === undefined ? undefined : guards.get(pool.name);
  if (pool === undefined || guard === undefined) return UNCHECKED;
  const type = headers['content-type'];
  if (type !== undefined && type.startsWith('application/grpc')) return UNCHECKED;
  const [path, query] = splitTarget(target);
  const check = guard.spec.check(method, path, query, headers, hasBody);
  const schema: SchemaResult = { route: check.operation?.template, violation: check.violation };
  if (check.violation === undefined || guard.mode === 'shadow') return { refused: false, schema };
  // refused here: the one record of this call is made here too
  const exchange = new Exchange(ctx.observer, method, requestIdOf(headers));
  exchange.peer = pool.name;
  exchange.path = path;
  exchange.schema = schema;
  const error = new MeshcarError(ERROR_OF[check.violation.kind], check.violation.message);
  exchange.errorCode = error.code;
  exchange.status = statusFor(error.code);
  refuse(exchange, error);
  return { refused: true };
}

/** An HTTP/1.1 call from the app: forwarded with the verdict's `schema`, unless refused (then answered here). */
export function screenHttp1(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, req: IncomingMessage, res: ServerResponse): Verdict {
  const target = parseRequestTarget(req.url);
  return verdict(ctx, guards, target.authority ?? req.headers.host, req.method ?? 'GET', target.path, req.headers, announcesBody(req.headers), (exchange, error) => {
    res.on('close', () => exchange.finish());
    sendError(res, error, { requestId: exchange.requestId });
  });
}

/** An h2c stream from the app. */
export function screenH2c(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Verdict {
  const path = headers[':path'] as string | undefined;
  if (path === undefined) return UNCHECKED;
  const authority = (headers[':authority'] as string | undefined) ?? headers.host;
  return verdict(ctx, guards, authority, (headers[':method'] as string | undefined) ?? 'GET', path, headers, !stream.endAfterHeaders, (exchange, error) => {
    stream.on('close', () => exchange.finish());
    // the app's upload (if any) is not wanted: read and drop it so the stream can complete
    stream.resume();
    sendStreamError(stream, error, exchange.requestId);
  });
}
