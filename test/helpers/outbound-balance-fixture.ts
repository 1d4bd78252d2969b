// Shared by balancing.test.ts and circuit.test.ts: an outbound with one upstream `payments`
// whose balancer, circuit breaker and outlier detection the test sets, and an observer that
// also records ejections and circuit-open refusals.

import type { Logger } from 'pino';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { BalancerConfig, CircuitBreakerConfig, OutlierDetectionConfig } from '../../src/config/upstream-policy-config.js';
import { createOutbound, type OutboundTuning } from '../../src/outbound/index.js';
import { appIdentity, envTestCodec, RecordingObserver, request, silent, UPSTREAM_ID, type Http1Result } from './outbound-fixture.js';
import type { TestPki } from './pki.js';

export class HealthObserver extends RecordingObserver {
  ejections = 0;
  readonly ejectedCounts: number[] = [];
  circuitOpen = 0;
  outlierEjected(): void {
    this.ejections += 1;
  }
  ejectedEndpointsChanged(_upstream: string, ejected: number): void {
    this.ejectedCounts.push(ejected);
  }
  circuitOpened(): void {
    this.circuitOpen += 1;
  }
  /** Resolves once `ejectedEndpointsChanged` has been reported `n` times in all. */
  async waitForEjectedCounts(n: number, timeoutMs = 5000): Promise<number[]> {
    const until = Date.now() + timeoutMs;
    while (this.ejectedCounts.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    return this.ejectedCounts;
  }
}

export interface BalanceSpec {
  ports: number[];
  timeoutMs?: number;
  idleTimeoutMs?: number;
  balancer?: BalancerConfig;
  circuitBreaker?: CircuitBreakerConfig;
  outlierDetection?: OutlierDetectionConfig;
  tuning?: OutboundTuning;
  /** Where the outbound logs (default: nowhere). */
  logger?: Logger;
  /** Which HTTP/2 codec carries the upstream sessions (default: MESHCAR_TEST_H2_CODEC, else the outbound's own, meshcar). */
  codec?: 'meshcar' | 'node';
}

export async function startBalanced(pki: TestPki, spec: BalanceSpec) {
  const observer = new HealthObserver();
  const codec = spec.codec ?? envTestCodec();
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: [
        {
          name: 'payments',
          endpoints: spec.ports.map((port) => parseEndpoint(`127.0.0.1:${port}`) as Endpoint),
          identity: UPSTREAM_ID,
          timeoutMs: spec.timeoutMs ?? 5000,
          ...(spec.idleTimeoutMs ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
          routes: [],
          ...(spec.balancer ? { balancer: spec.balancer } : {}),
          ...(spec.circuitBreaker ? { circuitBreaker: spec.circuitBreaker } : {}),
          ...(spec.outlierDetection ? { outlierDetection: spec.outlierDetection } : {}),
        },
      ],
    },
    identity: await appIdentity(pki),
    logger: spec.logger ?? silent,
    observer,
    options: spec.tuning ?? {},
    ...(codec ? { codec } : {}),
  });
  const bound = await outbound.listen();
  return { port: bound.port, observer, outbound, close: () => outbound.close() };
}

/** `total` requests, `concurrency` at a time, through one keep-alive agent per worker. */
export async function load(port: number, total: number, concurrency: number, path = '/echo'): Promise<Http1Result[]> {
  let next = 0;
  const results: Http1Result[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        results.push(await request(port, { path }));
      }
    }),
  );
  return results;
}
