// Test fixture for the inbound side: a throwaway PKI, a WorkloadIdentity for the server
// workload, a real app (HTTP/1.1 or h2c) on loopback, the inbound listener in front of it,
// an observer that records what it is told, and real mTLS clients (https, http2, raw tls).

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { pino, type Logger } from 'pino';
import { makePki, type IssuedLeaf, type TestPki } from './pki.js';
import { freePort } from './process.js';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { createInbound, type Inbound, type InboundLimits } from '../../src/inbound/index.js';
import type { AuthorizeRule } from '../../src/config/inbound-config.js';
import { DEFAULT_HTTP2 } from '../../src/config/http2-config.js';
import { defaultTestAppClient } from './app-client-switch.js';
import type { RefusedRequest, RequestRecord, TlsFailureDetail, TlsFailureReason, TrafficObserver } from '../../src/metrics/traffic.js';

export const TD = 'mesh.test';
export const SERVER_ID = `spiffe://${TD}/svc/orders`;
export const FRONTEND_ID = `spiffe://${TD}/svc/frontend`;

export class RecordingObserver implements TrafficObserver {
  readonly requests: RequestRecord[] = [];
  readonly tlsFailures: Array<{ direction: string; reason: TlsFailureReason }> = [];
  /** The words of each failure, in the same order. */
  readonly tlsFailureWords: string[] = [];
  requestFinished(record: RequestRecord): void {
    this.requests.push(record);
  }
  tlsHandshakeFailed(direction: 'inbound' | 'outbound', reason: TlsFailureReason, detail?: TlsFailureDetail): void {
    this.tlsFailures.push({ direction, reason });
    this.tlsFailureWords.push(detail?.message ?? '');
  }
  upstreamSessionsChanged(): void {}
  upstreamStreamsChanged(): void {}
  /** Requests refused before any exchange saw them (the parser's, a CONNECT): the access log's lines. */
  readonly refused: RefusedRequest[] = [];
  requestRefused(refusal: RefusedRequest): void {
    this.refused.push(refusal);
  }
  /** Connections the inbound closed as they came (connection-caps.ts), by reason. */
  readonly connectionRefusals: string[] = [];
  inboundConnectionRefused(reason: string): void {
    this.connectionRefusals.push(reason);
  }
  /** meshcar codec: streams reset for the caller's fault, by reason. */
  readonly streamErrors: string[] = [];
  streamError(_direction: 'inbound' | 'outbound', reason: string): void {
    this.streamErrors.push(reason);
  }
  /** h2c app: waits for a stream slot and refused streams, as `waited:<result>` and `refused:<result>`. */
  readonly appStreamEvents: string[] = [];
  appStreamWaited(result: string): void {
    this.appStreamEvents.push(`waited:${result}`);
  }
  appStreamRefused(result: string): void {
    this.appStreamEvents.push(`refused:${result}`);
  }
  /** Resolves once `n` requests have been reported (records arrive when the exchange closes). */
  async waitForRequests(n: number, timeoutMs = 3000): Promise<RequestRecord[]> {
    const until = Date.now() + timeoutMs;
    while (this.requests.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    return this.requests;
  }
  async waitForTlsFailures(n: number, timeoutMs = 3000): Promise<Array<{ direction: string; reason: TlsFailureReason }>> {
    const until = Date.now() + timeoutMs;
    while (this.tlsFailures.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    return this.tlsFailures;
  }
}

export type Http1Handler = (req: IncomingMessage, res: ServerResponse) => void;
export type H2Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => void;

export interface FixtureOptions {
  readonly app?: { protocol: 'http'; handler: Http1Handler; setup?: (server: http.Server) => void } | { protocol: 'h2c'; handler: H2Handler };
  /** Point the inbound at a port where nothing listens. */
  readonly appDown?: boolean;
  /** An app the test runs itself (e.g. a gRPC server). */
  readonly externalApp?: { protocol: 'http' | 'h2c'; port: number; /** default 127.0.0.1 */ host?: string };
  readonly authorize?: readonly AuthorizeRule[];
  readonly timeoutMs?: number;
  /** inbound.idleTimeout (default: the sidecar's, 5 min). */
  readonly idleTimeoutMs?: number;
  /** inbound.tunnelIdleTimeout (default: the sidecar's, 1 h). */
  readonly tunnelIdleTimeoutMs?: number;
  readonly limits?: InboundLimits;
  readonly pki?: TestPki;
  readonly serverLifetimeMs?: number;
  /** inbound.sessionResumption (default false: no session tickets). */
  readonly sessionResumption?: boolean;
  /**
   * http2.codec of the inbound. Default: MESHCAR_TEST_H2_CODEC if set (a codec-node-*.test.ts
   * file re-runs a whole existing file with the node codec by setting it before importing that
   * file), else the inbound's own default (meshcar).
   */
  readonly codec?: 'meshcar' | 'node';
  /** The inbound's logger (default: silent); a test reading its warn lines passes its own. */
  readonly logger?: Logger;
}

/** The codec the fixture gives an inbound when the test names none. */
export function defaultTestCodec(): 'meshcar' | 'node' | undefined {
  const value = process.env.MESHCAR_TEST_H2_CODEC;
  return value === 'meshcar' || value === 'node' ? value : undefined;
}

/** The codec an inbound the fixture starts really runs: the one named, else defaultTestCodec(), else the sidecar's default. */
export function effectiveTestCodec(named?: 'meshcar' | 'node'): 'meshcar' | 'node' {
  return named ?? defaultTestCodec() ?? DEFAULT_HTTP2.codec;
}

export interface InboundFixture {
  readonly pki: TestPki;
  readonly identity: WorkloadIdentity;
  readonly inbound: Inbound;
  readonly port: number;
  readonly appPort: number;
  readonly observer: RecordingObserver;
  /** An SVID for a caller (cached per ID). */
  client(id?: string): Promise<IssuedLeaf>;
  /** TLS options of a caller: its SVID, trusting our bundle. */
  tlsOptions(id?: string): Promise<tls.ConnectionOptions>;
  close(): Promise<void>;
}

export const silentLogger = pino({ level: 'silent' });

export async function startInbound(options: FixtureOptions = {}): Promise<InboundFixture> {
  const pki = options.pki ?? (await makePki(TD));
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(SERVER_ID, { lifetimeMs: options.serverLifetimeMs ?? 3_600_000 }), SERVER_ID), silentLogger);
  const appSpec = options.app ?? { protocol: 'http' as const, handler: echoHandler };
  const protocol = options.externalApp?.protocol ?? appSpec.protocol;

  let appPort: number;
  let closeApp: () => Promise<void>;
  if (options.externalApp) {
    appPort = options.externalApp.port;
    closeApp = async () => {};
  } else if (options.appDown) {
    // the inbound must be pointed at a port where nothing listens: one free a moment ago
    appPort = await freePort();
    closeApp = async () => {};
  } else if (appSpec.protocol === 'http') {
    const server = http.createServer(appSpec.handler);
    appSpec.setup?.(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    appPort = (server.address() as AddressInfo).port;
    closeApp = () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
  } else {
    const server = http2.createServer();
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    server.on('stream', appSpec.handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    appPort = (server.address() as AddressInfo).port;
    closeApp = () =>
      new Promise((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      });
  }

  const observer = new RecordingObserver();
  const inbound = createInbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      app: { protocol, host: options.externalApp?.host ?? '127.0.0.1', port: appPort },
      timeoutMs: options.timeoutMs ?? 5000,
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: options.tunnelIdleTimeoutMs } : {}),
      authorize: options.authorize,
      ...(options.sessionResumption ? { sessionResumption: true } : {}),
    },
    identity,
    trustDomain: TD,
    ownSpiffeId: SERVER_ID,
    logger: options.logger ?? silentLogger,
    observer,
    ...(options.limits ? { limits: options.limits } : {}),
    ...((options.codec ?? defaultTestCodec()) ? { codec: options.codec ?? defaultTestCodec() } : {}),
    ...(defaultTestAppClient() ? { appClient: defaultTestAppClient() } : {}),
  });
  const { port } = await inbound.listen();

  const clients = new Map<string, Promise<IssuedLeaf>>();
  const client = (id = FRONTEND_ID) => {
    let leaf = clients.get(id);
    if (!leaf) clients.set(id, (leaf = pki.issue(id)));
    return leaf;
  };
  return {
    pki,
    identity,
    inbound,
    port,
    appPort,
    observer,
    client,
    async tlsOptions(id = FRONTEND_ID) {
      const leaf = await client(id);
      // the server is pinned by SPIFFE ID elsewhere; here only the chain matters
      return { ca: pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem, checkServerIdentity: () => undefined };
    },
    async close() {
      await inbound.close();
      await closeApp();
    },
  };
}

/** The default app: echoes method, url, headers and body as JSON. */
export const echoHandler: Http1Handler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    res.writeHead(200, { 'content-type': 'application/json', 'x-app': 'echo', 'keep-alive': 'timeout=5', 'x-hop': 'gone' });
    res.end(body);
  });
};

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  trailers: NodeJS.Dict<string>;
  /** The head as it came on the wire, field by field (names as sent). */
  rawHeaders: string[];
}

/** One HTTP/1.1 request over mTLS (a fresh connection unless an agent is given). */
export function h1Request(
  port: number,
  tlsOptions: tls.ConnectionOptions,
  options: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; agent?: https.Agent } = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const requestOptions: https.RequestOptions & Pick<tls.ConnectionOptions, 'ALPNProtocols'> = {
      host: '127.0.0.1',
      port,
      method: options.method ?? 'GET',
      path: options.path ?? '/',
      headers: options.headers,
      agent: options.agent ?? false,
      ALPNProtocols: ['http/1.1'],
      ...(tlsOptions as https.RequestOptions),
    };
    const req = https.request(
      requestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), trailers: res.trailers, rawHeaders: res.rawHeaders }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** An HTTP/2 mTLS session to the inbound listener. */
export async function h2Connect(port: number, tlsOptions: tls.ConnectionOptions): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://127.0.0.1:${port}`, tlsOptions as http2.SecureClientSessionOptions);
  session.on('error', () => {});
  await Promise.race([
    once(session, 'connect'),
    once(session, 'close').then(() => {
      throw new Error('session closed before connecting');
    }),
  ]);
  return session;
}

/**
 * An inbound in front of an app the test runs itself on `app.port` (a raw TCP app, most often),
 * and an HTTP/2 caller's session to it; at `t`'s teardown the session goes, then the inbound and the app.
 */
export async function inboundBeforeHttpApp(
  t: { teardown(fn: () => unknown): void },
  app: { readonly port: number; close(): Promise<void> },
): Promise<{ fx: InboundFixture; tlsOptions: tls.ConnectionOptions; session: http2.ClientHttp2Session }> {
  const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const tlsOptions = await fx.tlsOptions();
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  return { fx, tlsOptions, session };
}

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  flags: number;
  /** The head as it came in the HEADERS block, field by field. */
  rawHeaders: string[];
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number | undefined;
}

export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let response: { headers: http2.IncomingHttpHeaders; flags: number; raw: string[] } | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h, flags, raw) => (response = { headers: h, flags, raw: raw as unknown as string[] }));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => {});
    stream.on('close', () => {
      if (!response) {
        reject(Object.assign(new Error(`stream closed without a response (rstCode ${stream.rstCode})`), { rstCode: stream.rstCode }));
        return;
      }
      resolve({ status: Number(response.headers[':status']), headers: response.headers, flags: response.flags, rawHeaders: response.raw, body: Buffer.concat(chunks), trailers, rstCode: stream.rstCode });
    });
    if (body !== undefined) stream.end(body);
  });
}

/** An HTTP/1.1 GET whose answer is read until the connection ends: its status, body and whether it was broken off (a stream cut mid-answer). */
export function h1Stream(port: number, tlsOptions: tls.ConnectionOptions, path: string): Promise<{ status: number; body: string; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, agent: false, ALPNProtocols: ['http/1.1'], ...(tlsOptions as https.RequestOptions) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body, aborted: !res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
}
