// Forwards exchanges to an HTTP/2 app without TLS (h2c, prior knowledge): gRPC servers and
// other HTTP/2 apps. Response trailers are relayed (grpc-status lives there), and a
// trailers-only answer (HEADERS with END_STREAM) stays one to an HTTP/2 caller. A request that
// finds the app's sessions full waits in the pool (h2c-pool.ts) for a slot, and one whose stream
// the app refused (REFUSED_STREAM: not processed) is sent again, with the body kept so far
// (h2c-replay.ts). What happens on the stream once it exists (its shared listeners: the answer
// relayed, resets and refusals judged) is in app-h2c-stream.ts.

import { validateHeaderName, validateHeaderValue } from 'node:http';
import { constants as h2 } from 'node:http2';
import type { ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import { formatHostPort } from '../config/address.js';
import { watchEarlyEnd } from '../http/early-end.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import { APP_CLIENT_ERRORS, appClientError, NOT_SENT } from './app-dispatch.js';
import { appAddressForCallers } from './app-errors.js';
import { failOnApp } from './app-failure.js';
import { kKnownLimit, kLease, onAppClosedUpload, onCallerTrailers, onContinue, onResponse, onStreamClose, onStreamError, onTrailers, onWantTrailers, type LeasedStream } from './app-h2c-stream.js';
import type { Exchange } from './exchange.js';
import { bindExchange } from './exchange-links.js';
import { awaitBodyEnd, startHeadTimeout } from './exchange-deadlines.js';
import type { AppForwarder } from './forwarder.js';
import { H2cSessionPool } from './h2c-pool.js';
import type { H2cPoolOptions, Lease } from './h2c-lease.js';
import { BODY_KEEP_LIMIT, keepBody, keptBody, MAX_SENDS, WaitingRequest } from './h2c-replay.js';
import { appHeadersOf } from './app-headers.js';

// A body's end goes out as (empty) trailers once the caller's body really ended, never from
// end(): Node's close(code) ends the writable side before its RST_STREAM, and without
// waitForTrailers that end is a clean END_STREAM, so an upload the caller broke off would
// reach the app as a complete request (gRPC and chunked uploads carry no length to catch it).
// The trailers are sent by onWantTrailers (app-h2c-stream.ts).
const WITH_BODY = Object.freeze({ endStream: false, waitForTrailers: true });
const WITHOUT_BODY = Object.freeze({ endStream: true });
const REFUSED_STREAM = h2.NGHTTP2_REFUSED_STREAM;

export class H2cApp implements AppForwarder {
  readonly label: string;
  /** The app's address as a refusal may tell callers (app-errors.ts); undefined: not told. */
  readonly toldAddress: string | undefined;
  readonly pool: H2cSessionPool;
  private readonly authority: string;
  /** Counts the waits for a stream slot and the refused streams (meshcar_app_stream_*_total). */
  readonly observer: TrafficObserver | undefined;

  constructor(address: HostPort, logger: Logger, poolOptions: H2cPoolOptions = {}, observer?: TrafficObserver) {
    this.label = formatHostPort(address);
    this.toldAddress = appAddressForCallers(address);
    this.authority = this.label;
    this.pool = new H2cSessionPool(`http://${this.label}`, logger, poolOptions);
    this.observer = observer;
  }

  forward(exchange: Exchange): void {
    // the exchange's timers (response head, idle) were started by the handler
    exchange.forwarder = this;
    this.send(exchange);
  }

  /** One attempt, now or once a stream slot is free; again for a request the app refused before processing it. */
  send(exchange: Exchange): void {
    const headers = appHeadersOf(exchange);
    headers[':method'] = exchange.method;
    headers[':path'] = exchange.target;
    headers[':scheme'] = 'http';
    headers[':authority'] = exchange.authority ?? this.authority;
    headers.host = undefined; // :authority says it; undefined values are skipped
    const unsendable = unsendableField(headers);
    if (unsendable !== undefined) {
      exchange.fail('bad_request', `header ${JSON.stringify(unsendable)} is not a valid HTTP field (name or value)`);
      return;
    }
    let lease: Lease | undefined;
    try {
      lease = this.pool.acquire(exchange.caller.id.uri);
    } catch (err) {
      // a session the pool could not even begin to open (http2.connect throws at once on an
      // address its URL cannot hold): this request's 502, never an uncaught error ending the sidecar
      const reason = (err as { code?: unknown }).code ?? (err as Error).message;
      exchange.fail('bad_gateway', `the sidecar cannot open a connection to the app (${String(reason)}): see this sidecar's inbound.app`);
      return;
    }
    if (lease !== undefined) {
      this.start(exchange, lease);
      return;
    }
    // every session is at the app's stream limit: wait for a slot, within the request's own
    // deadline and the route's timeout, body or not (startHeadTimeout)
    const waiter = new WaitingRequest(exchange, startWaiting, failWaiting, leaveQueue);
    exchange.upstream = waiter; // the exchange's end (deadline, caller gone) cancels it: it leaves the queue
    const refused = this.pool.wait(waiter) as WaitingRequest | undefined;
    if (refused !== undefined) {
      refused.exchange.upstream = undefined; // not in the queue: nothing to leave
      this.observer?.appStreamWaited?.('queue_full');
      refused.exchange.fail('overloaded', `the app's stream limit is reached on every session and ${this.pool.waiters.max} requests already wait for it`);
      if (refused === waiter) return;
    }
    // held until a stream takes it (pipe() resumes it): the byte counter's 'data' listener
    // (request-dispatch.ts) would have it flowing meanwhile, and those bytes would be lost
    if (exchange.requestHasBody) exchange.requestBody.pause();
    // the held body cannot end, so the route's timeout must start now (an upload would wait for
    // a slot unbounded but for the idle timeout; gRPC calls always have a body)
    startHeadTimeout(exchange);
  }

  /** The stream toward the app, on a slot of `lease`. */
  start(exchange: Exchange, lease: Lease): void {
    exchange.attempts++;
    let stream: ClientHttp2Stream;
    try {
      stream = watchEarlyEnd(lease.session.request(appHeadersOf(exchange), exchange.requestHasBody ? WITH_BODY : WITHOUT_BODY));
    } catch (err) {
      this.pool.release(lease, exchange.caller.id.uri);
      failOnApp(exchange, err, this.toldAddress);
      return;
    }
    (stream as LeasedStream)[kLease] = lease;
    (stream as LeasedStream)[kKnownLimit] = lease.settled;
    exchange.upstream = stream;
    bindExchange(stream, exchange);
    stream.on('response', onResponse);
    stream.on('trailers', onTrailers);
    stream.on('error', onStreamError);
    stream.once('close', onStreamClose);
    if (exchange.expectsContinue) stream.on('continue', onContinue);
    if (exchange.requestHasBody) {
      stream.once('wantTrailers', onWantTrailers);
      stream.once('aborted', onAppClosedUpload);
      const body = exchange.requestBody;
      if (exchange.attempts === 1) {
        // an HTTP/2 caller's trailers come as an event before its body's end
        body.on('trailers', onCallerTrailers);
        keepBody(exchange);
      } else {
        // a replay: what went out before (settle() checked it was all kept), then the rest
        for (const chunk of keptBody(exchange) ?? []) stream.write(chunk);
        if (body.readableEnded) {
          stream.end();
          return;
        }
      }
      body.pipe(stream);
    }
  }

  /** The app refused a stream, or went away before it (never processed): sent again, or answered 503 (never "closed the connection": the app only declined it). */
  replay(exchange: Exchange, stream: ClientHttp2Stream): void {
    const kept = exchange.requestHasBody ? keptBody(exchange) : [];
    if (kept !== null && exchange.attempts < MAX_SENDS) {
      if (exchange.requestHasBody) exchange.requestBody.unpipe(stream);
      this.observer?.appStreamRefused?.('replayed');
      this.send(exchange);
      return;
    }
    this.observer?.appStreamRefused?.('answered');
    // the last send's cause: a refusal, or a GOAWAY whose last stream id it was above
    const how = stream.rstCode === REFUSED_STREAM ? 'REFUSED_STREAM' : "above the last stream id of its GOAWAY";
    exchange.fail(
      'upstream_unavailable',
      kept === null
        ? `the app refused the request's stream (${how}: it did not process it) after more of its body than the ${BODY_KEEP_LIMIT} bytes the sidecar keeps to send again had gone out; it may be retried`
        : `the app refused the request's stream ${exchange.attempts} times (the last time ${how}: it did not process it); it may be retried`,
    );
  }

  close(): void {
    this.pool.close();
  }

  refuseWaiting(): number {
    const count = this.pool.waiters.size;
    this.pool.waiters.failAll(appClientError(APP_CLIENT_ERRORS.notSent, NOT_SENT));
    return count;
  }
}

function startWaiting(exchange: Exchange, lease: Lease): void {
  const app = exchange.forwarder as H2cApp;
  exchange.upstream = undefined; // out of the queue: nothing to leave any more
  app.observer?.appStreamWaited?.('granted');
  // the body flows now: the route's timeout starts again at its end (the caller's still holds)
  awaitBodyEnd(exchange);
  app.start(exchange, lease);
}

function failWaiting(exchange: Exchange, err: Error): void {
  exchange.upstream = undefined;
  const app = exchange.forwarder as H2cApp;
  app.observer?.appStreamWaited?.('failed');
  if ((err as NodeJS.ErrnoException).code === APP_CLIENT_ERRORS.notSent) {
    exchange.refuseUnsent(err.message);
    return;
  }
  failOnApp(exchange, err, app.toldAddress);
}

function leaveQueue(waiter: WaitingRequest): void {
  const app = waiter.exchange.forwarder as H2cApp;
  app.pool.waiters.delete(waiter);
  app.observer?.appStreamWaited?.('gave_up');
}

/**
 * The first field Node's http2 client must not be given: a name that is not a token makes it
 * destroy the whole pooled session (every other caller's stream on it fails), and a value with
 * a control character it sends as is. A caller's HTTP/2 codec or HTTP/1.1 parser refuses most
 * such fields first; this keeps one caller's request from ever reaching the shared session.
 */
function unsendableField(headers: OutgoingHttpHeaders): string | undefined {
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 0x3a /* ':' */) continue;
    try {
      validateHeaderName(name);
      if (Array.isArray(value)) for (const v of value) validateHeaderValue(name, v);
      else validateHeaderValue(name, String(value));
    } catch {
      return name;
    }
  }
  return undefined;
}
