// What the outbound side (index.ts) offers the composition root and is given by it: the
// Outbound interface (listen, drain, close, the live setters a reload calls, what it shows the
// admin views), its options, and the tuning tests and the sidecar set. Types only; index.ts
// exports them.

import type { Logger } from 'pino';
import type { HostPort } from '../config/address.js';
import type { OutboundConfig, UpstreamConfig } from '../config/outbound-config.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { TrafficObserver } from '../metrics/traffic.js';
import type { SchemaGuard } from '../schema/guard.js';
import type { LookupAll } from './endpoints.js';
import type { UpstreamView } from './upstreams-view.js';

export interface OutboundTuning {
  /** Upstream sessions are closed gracefully after this long (±10%). Default 10 min. */
  readonly maxSessionAgeMs?: number;
  /** Idle upstream sessions are PINGed this often; no answer by the next tick closes them. Default 30 s. */
  readonly pingIntervalMs?: number;
  /** Host-name endpoints are re-resolved this often. Default 5 s. */
  readonly dnsRefreshMs?: number;
  /** An endpoint that failed to connect is skipped this long (unless all have failed). Default 5 s. */
  readonly endpointBackoffMs?: number;
  /** Request head limit from the app. Default 16 KiB (HTTP/1.1: 431 beyond). */
  readonly maxHeaderBytes?: number;
  /** Idle HTTP/1.1 keep-alive connections from the app close after this. Default 65 s. */
  readonly keepAliveTimeoutMs?: number;
  /** Streams open at once on one h2c connection from the app (its SETTINGS_MAX_CONCURRENT_STREAMS). Default 1,024. */
  readonly maxAppStreams?: number;
  /** An HTTP/1.1 request head from the app not in full this long after its first byte: 408. Default 20 s. */
  readonly headersTimeoutMs?: number;
  /** Resolver for host-name endpoints (tests; default dns.promises.lookup, all addresses). */
  readonly lookup?: LookupAll;
}

export interface OutboundOptions {
  readonly config: OutboundConfig;
  readonly identity: WorkloadIdentity;
  readonly logger: Logger;
  readonly observer?: TrafficObserver;
  readonly options?: OutboundTuning;
  /** HTTP/2 toward upstream sidecars: src/h2 (`meshcar`, default: DEFAULT_HTTP2) or core http2 + http2-wrapper (`node`). */
  readonly codec?: 'meshcar' | 'node';
  /** OpenAPI guards by upstream name (lower-case): the app's calls are checked before they leave. */
  readonly schemas?: ReadonlyMap<string, SchemaGuard>;
}

export interface Outbound {
  /** Resolves endpoint names, binds the listener (port 0: any free port), resolves with the bound address. */
  listen(): Promise<HostPort>;
  /**
   * Stops accepting; HTTP/1.1 answers carry `Connection: close` and idle connections close;
   * h2c sessions get GOAWAY; waits up to `timeoutMs` for requests (and tunnels) in flight,
   * cuts what is left, then closes the upstream sessions gracefully.
   */
  drain(timeoutMs: number): Promise<void>;
  /** drain()'s wind-down with the listener still open: new calls are taken, answered with `Connection: close`. */
  windDown(): void;
  /** Stops at once: listener, app connections, upstream sessions, DNS timers. */
  close(): Promise<void>;
  /** 0 while a request is in flight, else milliseconds since the last one finished. */
  idleForMs(): number;
  /** Open HTTP/2 sessions toward an upstream (by name, any case); 0 for an unknown name. */
  sessionCount(upstream: string): number;
  /** GET /upstreams: each upstream's endpoints, addresses and their state, read now (upstreams-view.ts). */
  upstreams(): UpstreamView[];
  /**
   * Live reload of `outbound.upstreams`: new requests route by the new list at once (one swap of
   * the routing table). An upstream whose endpoints, identity, balancer and outlier detection
   * are unchanged keeps its pool and open sessions, with timeouts, retries and circuit limits
   * updated in place; new upstreams get a pool; removed or re-pointed ones are retired: their
   * sessions close gracefully once the streams in flight on them finish.
   */
  setUpstreams(upstreams: readonly UpstreamConfig[]): void;
  /** Replaces the OpenAPI guards by upstream name (an upstream missing from the map: unchecked). */
  setSchemas(schemas: ReadonlyMap<string, SchemaGuard>): void;
  readonly address: HostPort | undefined;
  readonly inFlight: number;
  readonly draining: boolean;
}
