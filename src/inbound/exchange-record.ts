// What an inbound exchange records as it goes: the status and error it ended with, the bytes
// each way, what it is linked to (app request, forwarder, trailers, schema result) and the
// books its deadlines keep (exchange-deadlines.ts). The report (exchange-report.ts), the relay
// and the deadlines read and write these; Exchange (exchange.ts) extends this class with the
// request's phases and answers, so the fields sit on the one object, no record in between.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { SchemaResult } from '../metrics/traffic.js';
import type { Deadline } from '../http/deadline-queue.js';
import type { Exchange } from './exchange.js';
import type { UpstreamRequest } from './exchange-links.js';
import type { AppForwarder } from './forwarder.js';

export abstract class ExchangeRecord {
  readonly startedAt = performance.now();
  /** The status sent to the caller (0 while none was). */
  status = 0;
  /**
   * Set when the sidecar answered itself, or 'reset' when the exchange broke off; an answer the
   * idle deadline cut after its head keeps that deadline's code (upstream_timeout), not 'reset'.
   */
  errorCode: string | undefined = undefined;
  /** gRPC requests: the grpc-status sent to the caller (null: none yet); undefined otherwise (src/http/grpc-status.ts). */
  grpcStatus: number | null | undefined;
  /** Body bytes: from the caller (request) and to it (response), for the access log. */
  bytesIn = 0;
  bytesOut = 0;
  /** The request head for the app as an object, built on first use (src/inbound/app-headers.ts). */
  appHeaders: OutgoingHttpHeaders | undefined = undefined;
  upstream: UpstreamRequest | undefined = undefined;
  /** The forwarder that took the exchange, for its retry. */
  forwarder: AppForwarder | undefined = undefined;
  /** Trailers the app sent (HTTP/2 delivers them before the end of the body). */
  appTrailers: OutgoingHttpHeaders | undefined = undefined;
  /** The caller's request trailers (an HTTP/2 caller's; an HTTP/1.1 caller's are on its request), for an h2c app. */
  callerTrailers: IncomingHttpHeaders | undefined = undefined;
  /** The app's response body being relayed (see relayBody), resumed when the caller drains. */
  relaySource: Readable | undefined = undefined;
  /** The body as read by the schema check (src/inbound/schema-check.ts), replayed to the app in place of the caller's stream. */
  bodyReplacement: Readable | undefined = undefined;
  /** What the OpenAPI check found (undefined: no spec, or not checked). */
  schema: SchemaResult | undefined = undefined;
  /** Attempts made toward the app (a bodiless request may be retried once on a stale connection; an h2c app's refused stream is sent again, see h2c-replay.ts). */
  attempts = 0;
  // the deadlines' books, kept by exchange-deadlines.ts (startTimers, touch)
  /** The app's response head is due (undefined: not started, none runs, or cancelled). */
  timer: Deadline<Exchange> | undefined = undefined;
  /** The route's wait for the app's head, from the end of the request body (0: none). */
  headTimeoutMs = 0;
  /**
   * The caller's request body has ended (exchange-deadlines.ts: onRequestEnd). Not
   * requestBody.readableEnded: a schema check that read the body hands the app a replacement
   * (bodyReplacement) that has not been read yet, though the caller is done.
   */
  requestBodyEnded = false;
  /** The caller's own deadline (grpc-timeout, x-request-timeout), from the request's arrival. */
  callerDeadlineMs: number | undefined = undefined;
  /** The limit the armed head deadline stands for, for its message. */
  headLimitMs = 0;
  /** That limit is the caller's own deadline (else the route's timeout): the message says which to raise. */
  headLimitIsCaller = false;
  /** The config key of the route's timeout (inbound.timeout, or a route's), for the message. */
  headTimeoutKey = 'inbound.timeout';
  /** No bytes either way for this long: 504, or a reset once the head went out (0: off). */
  idleTimeoutMs = 0;
  /** The config key of that limit (inbound.idleTimeout, or a route's), for the warn line of a stream it cut. */
  idleTimeoutKey = 'inbound.idleTimeout';
  /** performance.now() of the last body bytes either way (see touch()). */
  lastActivity = 0;
  idleTimer: Deadline<Exchange> | undefined = undefined;
  /** Once the app's answer is complete: how far the caller had taken it at the last idle check (see deliveryMark). */
  deliveredAtCheck = -Infinity;
}
