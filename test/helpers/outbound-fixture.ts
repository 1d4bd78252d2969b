// Test fixture for the outbound side: a throwaway PKI, the app's WorkloadIdentity, "upstream
// sidecars" that are plain HTTP/2 mTLS servers (requestCert, a leaf with the upstream's SPIFFE
// ID) counting every handshake, the outbound listener in front, an observer that records what
// it is told, and plain app-side clients (HTTP/1.1, h2c with prior knowledge).

import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { pino, type Logger } from 'pino';
import { makePki, type IssuedLeaf, type TestPki } from './pki.js';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { peerIdentity } from '../../src/identity/peer-identity.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import type { RetryConfig } from '../../src/config/upstream-policy-config.js';
import { createOutbound, type Outbound, type OutboundTuning } from '../../src/outbound/index.js';
import type { RefusedRequest, RequestRecord, TlsFailureReason, TrafficObserver } from '../../src/metrics/traffic.js';

export const TD = 'mesh.test';
export const APP_ID = `spiffe://${TD}/svc/frontend`;
export const UPSTREAM_ID = `spiffe://${TD}/svc/payments`;
export const silent = pino({ level: 'silent' });

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `check()` holds, polled every 5 ms; throws naming `what` after `timeoutMs`. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

export class RecordingObserver implements TrafficObserver {
  readonly requests: RequestRecord[] = [];
  /** Requests refused before any forwarder saw them (the listener's own answers). */
  readonly refused: RefusedRequest[] = [];
  readonly tlsFailures: Array<{ direction: string; reason: TlsFailureReason }> = [];
  readonly sessions = new Map<string, number>();
  readonly streams = new Map<string, number>();
  requestFinished(record: RequestRecord): void {
    this.requests.push(record);
  }
  requestRefused(refusal: RefusedRequest): void {
    this.refused.push(refusal);
  }
  tlsHandshakeFailed(direction: 'inbound' | 'outbound', reason: TlsFailureReason): void {
    this.tlsFailures.push({ direction, reason });
  }
  upstreamSessionsChanged(upstream: string, delta: number): void {
    this.sessions.set(upstream, (this.sessions.get(upstream) ?? 0) + delta);
  }
  upstreamStreamsChanged(upstream: string, delta: number): void {
    this.streams.set(upstream, (this.streams.get(upstream) ?? 0) + delta);
  }
  async waitForRequests(n: number, timeoutMs = 3000): Promise<RequestRecord[]> {
    const until = Date.now() + timeoutMs;
    while (this.requests.length < n && Date.now() < until) await sleep(5);
    return this.requests;
  }
}

export type H2Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => void;

/** What the default upstream handler answers on /echo (and any unknown path). */
export interface Echo {
  method: string;
  path: string;
  authority: string;
  scheme: string;
  headers: Record<string, string | string[]>;
  bodyLength: number;
  body: string;
  trailers: Record<string, string | string[]>;
  callerId: string;
}

/**
 * The default upstream: /echo (JSON of what arrived), /slow/<ms>, /reset, /status/<code>,
 * /trailers (gRPC-like: data, then grpc-status in trailers), /bytes/<n>.
 */
export const defaultHandler: H2Handler = (stream, headers) => {
  const path = String(headers[':path']);
  stream.on('error', () => {});
  if (path.startsWith('/slow/')) {
    const ms = Number(path.slice('/slow/'.length).split('?')[0]);
    const timer = setTimeout(() => echo(stream, headers), ms);
    stream.once('close', () => clearTimeout(timer));
    return;
  }
  if (path === '/reset') {
    stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  if (path.startsWith('/status/')) {
    stream.resume();
    stream.respond({ ':status': Number(path.slice('/status/'.length)), 'x-upstream': 'yes' }, { endStream: true });
    return;
  }
  if (path === '/trailers') {
    stream.resume();
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all good' }));
    stream.end(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
    return;
  }
  if (path.startsWith('/bytes/')) {
    stream.resume();
    const total = Number(path.slice('/bytes/'.length));
    stream.respond({ ':status': 200, 'content-length': total });
    const chunk = Buffer.alloc(64 * 1024, 120);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += piece.length;
        if (!stream.write(piece)) {
          stream.once('drain', pump);
          return;
        }
      }
      stream.end();
    };
    pump();
    return;
  }
  echo(stream, headers);
};

export function echo(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  const chunks: Buffer[] = [];
  let trailers: Record<string, string | string[]> = {};
  stream.on('trailers', (t) => (trailers = t as Record<string, string | string[]>));
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    if (stream.closed || stream.destroyed) return;
    const body = Buffer.concat(chunks);
    const plain: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && v !== undefined) plain[k] = v as string | string[];
    const caller = peerIdentity(stream.session?.socket as TLSSocket, TD);
    const reply: Echo = {
      method: String(headers[':method']),
      path: String(headers[':path']),
      authority: String(headers[':authority']),
      scheme: String(headers[':scheme']),
      headers: plain,
      bodyLength: body.length,
      body: body.length <= 4096 ? body.toString() : '',
      trailers,
      callerId: caller.ok ? caller.id.uri : `refused: ${caller.message}`,
    };
    const text = JSON.stringify(reply);
    stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-upstream': 'echo' });
    stream.end(text);
  });
}

export interface UpstreamServer {
  readonly port: number;
  readonly server: http2.Http2SecureServer;
  readonly leaf: IssuedLeaf;
  /** Full TLS handshakes and resumptions, in order of arrival. */
  readonly handshakes: Array<{ resumed: boolean; clientSerial: string; clientId: string }>;
  readonly sessions: Set<http2.ServerHttp2Session>;
  /** TCP connections accepted (a refused handshake never reaches `handshakes`). */
  connections: number;
  /** Requests served (stream count). */
  requests: number;
  pings: number;
  close(): Promise<void>;
}

export interface UpstreamOptions {
  readonly id?: string;
  readonly handler?: H2Handler;
  readonly settings?: http2.Settings;
  /** A leaf the test made itself (wrong identity, foreign CA). */
  readonly leaf?: IssuedLeaf;
  readonly port?: number;
  readonly host?: string;
}

/** An "upstream sidecar": HTTP/2 over mutual TLS, trusting the test PKI. */
export async function startUpstream(pki: TestPki, options: UpstreamOptions = {}): Promise<UpstreamServer> {
  const id = options.id ?? UPSTREAM_ID;
  const leaf = options.leaf ?? (await pki.issue(id));
  // the leaf as is (it may be deliberately wrong), trusting callers from the test PKI
  const tlsOptions = { key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem };
  const server = http2.createSecureServer({ ...tlsOptions, ...MTLS_SERVER_OPTIONS, ...(options.settings ? { settings: options.settings } : {}) });
  const state: UpstreamServer = {
    port: 0,
    server,
    leaf,
    handshakes: [],
    sessions: new Set(),
    connections: 0,
    requests: 0,
    pings: 0,
    close: async () => {
      for (const session of state.sessions) session.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  server.on('connection', () => (state.connections += 1));
  server.on('secureConnection', (socket: TLSSocket) => {
    const cert = socket.getPeerX509Certificate();
    const caller = peerIdentity(socket, TD);
    state.handshakes.push({ resumed: socket.isSessionReused(), clientSerial: cert?.serialNumber.toLowerCase() ?? '', clientId: caller.ok ? caller.id.uri : '' });
  });
  server.on('session', (session) => {
    state.sessions.add(session);
    session.on('ping', () => (state.pings += 1));
    session.on('error', () => {});
    session.once('close', () => state.sessions.delete(session));
  });
  server.on('stream', (stream, headers, flags) => {
    state.requests += 1;
    (options.handler ?? defaultHandler)(stream, headers, flags);
  });
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  (state as { port: number }).port = (server.address() as AddressInfo).port;
  return state;
}

/** An upstream (`options`) and an outbound routing `payments` to it; both closed at `t`'s teardown. */
export async function startOutboundToUpstream(t: { teardown(fn: () => unknown): void }, options: UpstreamOptions = {}): Promise<{ upstream: UpstreamServer; fx: OutboundFixture }> {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, options);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  return { upstream, fx };
}

/**
 * An upstream (`options`), an outbound on `codec` routing `payments` to it (`tuning`: the
 * route's idle timeout, the sessions' PING interval), and an app's h2c session to the
 * outbound; at `t`'s teardown the session goes first, then the outbound and the upstream.
 */
export async function startH2cAppToUpstream(
  t: { teardown(fn: () => unknown): void },
  codec: 'meshcar' | 'node',
  options: UpstreamOptions = {},
  tuning: { readonly idleTimeoutMs?: number; readonly pingIntervalMs?: number } = {},
): Promise<{ upstream: UpstreamServer; fx: OutboundFixture; session: http2.ClientHttp2Session }> {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, options);
  const spec = { name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], ...(tuning.idleTimeoutMs !== undefined ? { idleTimeoutMs: tuning.idleTimeoutMs } : {}) };
  const fx = await startOutbound(pki, [spec], { codec, ...(tuning.pingIntervalMs !== undefined ? { pingIntervalMs: tuning.pingIntervalMs } : {}) });
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  session.on('error', () => {});
  t.teardown(async () => {
    session.destroy();
    await fx.close();
    await upstream.close();
  });
  return { upstream, fx, session };
}

export interface UpstreamSpec {
  readonly name: string;
  /** `host:port` or `dns:NAME:PORT` strings, as a config writes them. */
  readonly endpoints: readonly string[];
  readonly identity?: string;
  readonly timeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly tunnelIdleTimeoutMs?: number;
  /** Retry settings (default: the outbound's). */
  readonly retries?: RetryConfig;
}

export interface OutboundFixture {
  readonly pki: TestPki;
  readonly identity: WorkloadIdentity;
  readonly outbound: Outbound;
  readonly port: number;
  readonly observer: RecordingObserver;
  close(): Promise<void>;
}

export async function appIdentity(pki: TestPki, lifetimeMs = 3_600_000): Promise<WorkloadIdentity> {
  return new WorkloadIdentity(validateSvid(await pki.issue(APP_ID, { lifetimeMs }), APP_ID), silent);
}

/**
 * Tuning, plus which HTTP/2 codec carries the upstream sessions. Default: MESHCAR_TEST_H2_CODEC
 * if set (a codec-node-*.test.ts file re-runs a whole existing file on the node codec by setting
 * it before importing that file), else the outbound's own default, `meshcar`.
 */
export type OutboundTestOptions = OutboundTuning & { readonly codec?: 'meshcar' | 'node'; /** The outbound's logger (default: silent). */ readonly logger?: Logger };

export async function startOutbound(pki: TestPki, upstreams: readonly UpstreamSpec[], testOptions: OutboundTestOptions = {}, identity?: WorkloadIdentity): Promise<OutboundFixture> {
  const { codec: named, logger, ...options } = testOptions;
  const codec = named ?? envTestCodec();
  const id = identity ?? (await appIdentity(pki));
  const observer = new RecordingObserver();
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: upstreams.map((u) => ({
        name: u.name.toLowerCase(),
        endpoints: u.endpoints.map((text) => {
          const endpoint = parseEndpoint(text);
          if (typeof endpoint === 'string') throw new Error(`${text}: ${endpoint}`);
          return endpoint as Endpoint;
        }),
        identity: u.identity ?? UPSTREAM_ID,
        timeoutMs: u.timeoutMs ?? 5000,
        ...(u.connectTimeoutMs !== undefined ? { connectTimeoutMs: u.connectTimeoutMs } : {}),
        ...(u.idleTimeoutMs !== undefined ? { idleTimeoutMs: u.idleTimeoutMs } : {}),
        ...(u.tunnelIdleTimeoutMs !== undefined ? { tunnelIdleTimeoutMs: u.tunnelIdleTimeoutMs } : {}),
        ...(u.retries !== undefined ? { retries: u.retries } : {}),
        routes: [],
      })),
    },
    identity: id,
    logger: logger ?? silent,
    observer,
    options,
    ...(codec ? { codec } : {}),
  });
  const bound = await outbound.listen();
  return { pki, identity: id, outbound, port: bound.port, observer, close: () => outbound.close() };
}

export { makePki };

/** MESHCAR_TEST_H2_CODEC, if it names a codec: what a re-run file asks every outbound of the file it imports to use. */
export function envTestCodec(): 'meshcar' | 'node' | undefined {
  const value = process.env.MESHCAR_TEST_H2_CODEC;
  return value === 'meshcar' || value === 'node' ? value : undefined;
}

export interface Http1Result {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  trailers: NodeJS.Dict<string>;
  /** The head as it came on the wire, field by field. */
  rawHeaders: string[];
  text: string;
  json<T = Echo>(): T;
}

export interface Http1Request {
  method?: string;
  path?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  agent?: http.Agent | false;
  /** Aborting it destroys the request (the app gives up). */
  signal?: AbortSignal;
}

/** An HTTP/1.1 answer's status and its body as text, once it has ended. */
export function answerText(res: http.IncomingMessage): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (text += c));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    res.on('error', reject);
  });
}

/** One HTTP/1.1 request to the outbound port, collected whole. */
export function request(port: number, options: Http1Request = {}): Promise<Http1Result> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/echo', headers: { host: 'payments', ...options.headers }, agent: options.agent ?? false, ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: res.trailers, rawHeaders: res.rawHeaders, text: body.toString(), json: () => JSON.parse(body.toString()) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface H2Result {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  status: number;
}

/** One request on an h2c session to the outbound port. */
export function h2cRequest(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string, requestTrailers?: http2.OutgoingHttpHeaders): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':authority': 'payments', ...headers }, { endStream: body === undefined, waitForTrailers: requestTrailers !== undefined });
    let response: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (response = h));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ headers: response, body: Buffer.concat(chunks), trailers, status: Number(response[':status']) }));
    stream.on('error', reject);
    if (requestTrailers) stream.once('wantTrailers', () => stream.sendTrailers(requestTrailers));
    if (body !== undefined) stream.end(body);
  });
}
