// Shared by the outbound's retry tests (retries, retry-timing): an outbound in front of real mTLS
// upstreams on loopback, with an observer that records each retry and budget refusal, and
// upstream handlers and clients those tests share.

import type t from 'tap';
import http2 from 'node:http2';
import { appIdentity, defaultHandler, envTestCodec, RecordingObserver, silent, UPSTREAM_ID, type H2Handler } from './outbound-fixture.js';
import type { TestPki } from './pki.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { RetryConfig } from '../../src/config/upstream-policy-config.js';
import { createOutbound } from '../../src/outbound/index.js';
import { RETRY_DEFAULTS } from '../../src/outbound/retry.js';


export class RetryObserver extends RecordingObserver {
  readonly retries: Array<{ upstream: string; reason: string; outcome: string }> = [];
  exhausted = 0;
  retryAttempted(upstream: string, reason: string, outcome: string): void {
    this.retries.push({ upstream, reason, outcome });
  }
  retryBudgetExhausted(): void {
    this.exhausted += 1;
  }
}

export interface Spec {
  endpoints: number[];
  timeoutMs?: number;
  idleTimeoutMs?: number;
  retries?: Partial<RetryConfig>;
  codec?: 'meshcar' | 'node';
  circuitBreaker?: { maxRequests: number; maxPending: number };
}

export const FAST_BACKOFF: Partial<RetryConfig> = { backoffBaseMs: 1, backoffMaxMs: 5 };

export type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

export async function startRetryOutbound(t: TapTest, pki: TestPki, spec: Spec) {
  const observer = new RetryObserver();
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: [
        {
          name: 'payments',
          endpoints: spec.endpoints.map((port) => parseEndpoint(`127.0.0.1:${port}`) as Endpoint),
          identity: UPSTREAM_ID,
          timeoutMs: spec.timeoutMs ?? 5000,
          ...(spec.idleTimeoutMs !== undefined ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
          routes: [],
          retries: { ...RETRY_DEFAULTS, ...FAST_BACKOFF, ...spec.retries },
          ...(spec.circuitBreaker ? { circuitBreaker: spec.circuitBreaker } : {}),
        },
      ],
    },
    identity: await appIdentity(pki),
    logger: silent,
    observer,
    // the codec-node-* twins run the retry tests again on the node codec (MESHCAR_TEST_H2_CODEC)
    ...((spec.codec ?? envTestCodec()) ? { codec: spec.codec ?? envTestCodec() } : {}),
  });
  const bound = await outbound.listen();
  t.teardown(() => outbound.close());
  return { port: bound.port, observer, outbound };
}

/** Answers `status` (with extra headers) to the first `n` requests, then echoes. */
export function flaky(n: number, status: number, extra: http2.OutgoingHttpHeaders = {}): H2Handler {
  let seen = 0;
  return (stream, headers, flags) => {
    seen += 1;
    if (seen <= n) {
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ ':status': status, ...extra }, { endStream: true });
      return;
    }
    defaultHandler(stream, headers, flags);
  };
}


/** The promise's value, or a rejection after `ms` (a broken build fails fast instead of hanging). */
export function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no outcome within ${ms} ms`)), ms);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

export function h2(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':authority': 'payments', ...headers }, { endStream: body === undefined });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}
