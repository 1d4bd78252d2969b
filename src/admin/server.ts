// The admin listener (loopback by default): liveness, readiness, the current identity, the
// effective config, Prometheus metrics, and POST /reload. It reads state (and asks for a
// reload) through the AdminState interface and never reaches into the data plane. Requests a
// web page could make (rebound Host names, cross-origin POSTs, cross-site fetches) are refused
// first; a peer on another host gets only liveness, readiness and metrics (remote-access.ts). The port may be
// open to every host (Prometheus in Kubernetes), so what one client can cost is bounded: a few
// requests in flight per connection (pipeline-bound.ts), one /metrics render shared by the
// scrapes that come together (shared-renders.ts), and at most ADMIN_MAX_CONNECTIONS connections,
// ADMIN_MAX_CONNECTIONS_PER_PEER of them from one address (peer-connections.ts).

import { createServer, maxHeaderSize, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { MeshcarError, listenFailed } from '../errors.js';
import { formatHostPort } from '../config/address.js';
import { asMeshcarError, sendError, sendJson } from '../http/status.js';
import { refuseAndClose, refuseConnectMethod } from '../http/client-error.js';
import { answerBrokenBody, answeredByParser, bodyEnded, trackResponse } from './body-end.js';
import { refuseUnmetExpectations } from '../http/expectation.js';
import { lingerWhenClosedEarly } from '../http/lingering-close.js';
import { servedTarget } from '../http/served-target.js';
import { keepEveryHeadLine } from '../http/head-size.js';
import { BrowserGuard } from './browser-guard.js';
import { remoteRefusal } from './remote-access.js';
import { CONNECTIONS_CHECKING_INTERVAL_MS, closeIdleConnections } from '../http/idle-connections.js';
import { gracefulCloser } from '../http/graceful-close.js';
import { LogPerKey, leftOut } from '../log-per-key.js';
import { logListenerErrors } from '../http/listener-errors.js';
import { capConnectionsEvictingIdle } from '../http/connection-slots.js';
import { ADMIN_MAX_PIPELINED, PipelineBound } from './pipeline-bound.js';
import { METRICS_MIN_GAP_MS, SharedRenders } from './shared-renders.js';
import { ADMIN_MAX_CONNECTIONS_PER_PEER, peerShareEvents } from './peer-connections.js';
import { clip } from '../clip.js';

/** A connection with no request in flight and no bytes for this long is closed. */
export const ADMIN_IDLE_TIMEOUT_MS = 15_000;
/** A request head must be whole this long after its first bytes (408 otherwise). */
export const ADMIN_HEADERS_TIMEOUT_MS = 10_000;

/** Connections open at once; at the cap the oldest idle one is closed for a new one (src/http/connection-slots.ts). */
export const ADMIN_MAX_CONNECTIONS = 256;

/** The most of a peer's text (a target, a Host, an Origin) a refusal quotes. */
export const QUOTED_MAX = 256;

/** The endpoints every admin server answers to GET (views and POST /reload come with the state). */
const GET_PATHS: ReadonlySet<string> = new Set(['/healthz', '/ready', '/identity', '/config', '/metrics']);

/** At close, how long answers in flight are waited for before their connections are cut. */
const ADMIN_CLOSE_GRACE_MS = 2_000;

export interface AdminState {
  /** True once the identity is loaded and every listener is bound, false again while draining. */
  ready(): boolean;
  draining(): boolean;
  /**
   * The SVID served has expired (renewal failing past its end): every peer refuses it, so the
   * sidecar is not ready whatever else holds; /ready says so (503 expired), with when it ended.
   */
  expiredAt?(): Date | undefined;
  identity(): Record<string, unknown>;
  config(): Record<string, unknown>;
  metrics(acceptHeader: string | undefined): Promise<{ contentType: string; body: string }>;
  /**
   * POST /reload: re-read the config file. Resolves with the JSON answer (200); rejects with a
   * MeshcarError (`config_invalid` → 400) when the file is invalid and nothing changed.
   */
  reload?(): Promise<Record<string, unknown>>;
  /** Extra read-only JSON views (e.g. /endpoints), by path; given the query (e.g. ?format=openapi). May throw a MeshcarError. */
  readonly views?: Readonly<Record<string, (query: URLSearchParams) => unknown>>;
  /** Views this sidecar could have but does not, with why (a 404 that says so, not "no admin endpoint"). */
  readonly absentViews?: Readonly<Record<string, string>>;
}

/** True when Accept-Encoding lists gzip (or *) without q=0. */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    return !params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/.test(p));
  });
}

export interface RunningAdmin {
  readonly host: string;
  readonly port: number;
  /** Replaces the names accepted in Host besides localhost and IP addresses (admin.hosts, live). */
  setHosts(hosts: readonly string[]): void;
  close(): Promise<void>;
}

export interface AdminOptions {
  /** admin.hosts: names accepted in Host besides localhost; IP addresses always pass. */
  readonly hosts?: readonly string[];
  /** A connection with no request in flight and no bytes moving for this long is closed (default ADMIN_IDLE_TIMEOUT_MS). */
  readonly idleTimeoutMs?: number;
  /** Renders of /metrics start at least this far apart while scrapes keep coming (default METRICS_MIN_GAP_MS). */
  readonly metricsMinGapMs?: number;
  /** A request head not whole this long after its first bytes gets 408 (default ADMIN_HEADERS_TIMEOUT_MS). */
  readonly headersTimeoutMs?: number;
  /** Connections open at once (default ADMIN_MAX_CONNECTIONS). */
  readonly maxConnections?: number;
  /** Connections open at once from one peer address (default ADMIN_MAX_CONNECTIONS_PER_PEER). */
  readonly maxConnectionsPerPeer?: number;
}

export async function startAdminServer(listen: { host: string; port: number }, state: AdminState, logger: Logger, options: AdminOptions = {}): Promise<RunningAdmin> {
  const guard = new BrowserGuard(options.hosts);
  const pages = new SharedRenders((accept) => state.metrics(accept), options.metricsMinGapMs ?? METRICS_MIN_GAP_MS);
  const cuts = new LogPerKey();
  const pipelining = new PipelineBound(ADMIN_MAX_PIPELINED, (socket: Socket) => {
    const remote = socket.remoteAddress ?? 'unknown';
    const through = cuts.take(remote);
    if (through) logger.warn({ remote }, `admin connection closed: more than ${ADMIN_MAX_PIPELINED} requests pipelined without reading the answers${leftOut(through, `from ${remote}`)}`);
  });

  // A refused request is a warning, not a debug line: a pod asking for /config or POST /reload
  // from another host, or a web page's request, is someone reaching for what the admin port
  // keeps to this host, and the operator should see it without turning debug on. One line per
  // peer address per 10 s (LogPerKey), which says how many it left out.
  const refusals = new LogPerKey();
  function logRefusal(req: IncomingMessage, reason: string, fields: Record<string, unknown>): void {
    const remote = req.socket.remoteAddress ?? 'unknown';
    const through = refusals.take(remote);
    // what the peer sent is cut (a head may hold 16 KiB of it): the peer must not size our lines
    const quoted: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(fields)) quoted[name] = typeof value === 'string' ? clip(value, QUOTED_MAX) : value;
    if (through) logger.warn({ remote, method: clip(req.method ?? '', QUOTED_MAX), url: clip(req.url ?? '', QUOTED_MAX), ...quoted }, `admin request refused: ${reason}${leftOut(through, `from ${remote}`)}`);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // a head within 16 KiB as written; one Host on HTTP/1.1 (Node's own refusal of none, requireHostHeader, is a bare 400: ours is
    // JSON, as the others); absolute-form (GET http://127.0.0.1:9901/ready) is accepted as every
    // server must (RFC 9112 §3.2.2), and its authority stands for Host, which the server must then
    // ignore: the guard judges the name the request was sent to, as it judges Host
    const { path, query, authority } = servedTarget(req, res);
    const headers = authority === undefined ? req.headers : { ...req.headers, host: authority };
    const refusal = guard.refusal(req.method, headers);
    if (refusal !== undefined) {
      req.resume();
      logRefusal(req, refusal, { host: headers.host, origin: req.headers.origin });
      throw new MeshcarError('forbidden', refusal);
    }
    const remote = remoteRefusal(path, req.socket.remoteAddress);
    if (remote !== undefined) {
      req.resume();
      logRefusal(req, remote, {});
      throw new MeshcarError('forbidden', remote);
    }
    if (path === '/reload' && state.reload) {
      req.resume(); // a body, if any, is not read
      if (req.method !== 'POST') throw new MeshcarError('method_not_allowed', 'use POST /reload', { allow: 'POST' });
      // but it ends first: one that breaks runs no reload, and gets the parser's 400 (body-end.ts)
      if (!(await bodyEnded(req))) return;
      return sendJson(res, 200, await state.reload());
    }
    // the path first, then the method: a typo (POST /relaod) is a 404 whatever the method, as
    // Envoy's admin answers it ("use GET /relaod" named an endpoint that does not exist). Views
    // by own key only: a target such as __proto__ names none
    const view = state.views !== undefined && Object.hasOwn(state.views, path) ? state.views[path] : undefined;
    if (!GET_PATHS.has(path) && view === undefined) {
      req.resume();
      const absent = state.absentViews !== undefined && Object.hasOwn(state.absentViews, path) ? state.absentViews[path] : undefined;
      if (absent !== undefined) throw new MeshcarError('not_found', `${path}: ${absent}`);
      const known = [...GET_PATHS, ...Object.keys(state.views ?? {}), ...(state.reload ? ['POST /reload'] : [])];
      throw new MeshcarError('not_found', `no admin endpoint ${path}; try ${known.join(', ')}`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new MeshcarError('method_not_allowed', `use GET ${path}`, { allow: 'GET, HEAD' });
    switch (path) {
      case '/healthz':
        // the same word as the CA's /healthz: the process is up and answering
        return sendJson(res, 200, { status: 'ok' });
      case '/ready': {
        if (state.draining()) return sendJson(res, 503, { status: 'draining' });
        const expiredAt = state.expiredAt?.();
        if (expiredAt) return sendJson(res, 503, { status: 'expired', notAfter: expiredAt.toISOString() });
        return state.ready() ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'starting' });
      }
      case '/identity':
        return sendJson(res, 200, state.identity());
      case '/config':
        return sendJson(res, 200, state.config());
      case '/metrics': {
        const page = await pages.page(req.headers.accept);
        // Prometheus asks for gzip; a page of a few hundred routes shrinks about tenfold
        const gzipped = acceptsGzip(req.headers['accept-encoding']);
        const body = gzipped ? await page.gzipped() : page.body;
        if (res.destroyed) return; // the client left while the page was made
        res.writeHead(200, { 'content-type': page.contentType, ...(gzipped ? { 'content-encoding': 'gzip' } : {}), vary: 'accept, accept-encoding', 'content-length': body.length });
        res.end(body);
        return;
      }
      default: {
        // a view: every other path was answered 404 above (this throw only narrows the type)
        if (view === undefined) throw new MeshcarError('not_found', `no admin endpoint ${path}`);
        return sendJson(res, 200, await view(new URLSearchParams(query)));
      }
    }
  }

  // Node's own connection check stays at its 30 s default (a 1 s one would wake every idle
  // sidecar each second); a silent or stalled connection is closed, and a head that takes over
  // headersTimeout answered 408, by the idle sweep below, which runs only while a connection is open
  const server: Server = createServer({ requireHostHeader: false }, (req, res) => {
    trackResponse(req, res);
    if (!pipelining.admit(req, res)) return;
    route(req, res).catch((err: unknown) => {
      // the parser's 400 answered it while the handler ran (body-end.ts)
      if (answeredByParser(res)) return;
      const error = asMeshcarError(err);
      if (error.code === 'internal') logger.error({ err }, 'admin request failed');
      sendError(res, error);
    });
  });
  // A client that half-closes once its request is sent (`nc -q`, a script that shuts its
  // writing side) still reads the answer: by default Node ends such a connection at the FIN,
  // so a POST /reload ran with nobody told. Answers in flight finish, then the connection ends.
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  const closeGracefully = gracefulCloser(server);
  // a head's every line is kept, so that its size is judged whole (servedTarget, head-size.ts)
  keepEveryHeadLine(server);
  server.headersTimeout = options.headersTimeoutMs ?? ADMIN_HEADERS_TIMEOUT_MS;
  server.requestTimeout = 30_000;
  // what the parser refuses gets the JSON error of every other admin answer (Node's is bare)
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const texts = {
      headTooLarge: `the request head is over the admin port's limit of ${maxHeaderSize} bytes`,
      timedOut: `the request did not arrive in time (${server.headersTimeout / 1000} s for its head, ${server.requestTimeout / 1000} s in all)`,
    };
    if (answerBrokenBody(err, socket, texts)) logger.debug({ code: err.code, remote: socket.remoteAddress }, 'a request body broke: answered in its turn, then the connection closes');
    else refuseAndClose(err, socket, texts);
  });
  refuseConnectMethod(server, 'GET, HEAD, POST');
  refuseUnmetExpectations(server);
  // an answer that closes the connection while the client is still sending reaches it (lingering-close.ts)
  server.on('connection', lingerWhenClosedEarly);
  const maxConnections = options.maxConnections ?? ADMIN_MAX_CONNECTIONS;
  const maxPerPeer = options.maxConnectionsPerPeer ?? ADMIN_MAX_CONNECTIONS_PER_PEER;
  // at the cap the oldest idle connection makes room (connection-slots.ts), so idle connections
  // from a few pods cannot shut the kubelet's probes out; at a peer's share, its own (peer-connections.ts)
  const drops = new LogPerKey();
  const dropped = (remote: string, message: string) => {
    const through = drops.take('drop');
    if (through) logger.warn({ remote }, `${message}${leftOut(through, 'closed')}`);
  };
  capConnectionsEvictingIdle(server, { max: maxConnections, maxPerAddress: maxPerPeer }, {
    ...peerShareEvents(maxPerPeer, logger),
    evicted: (remote) => dropped(remote, `admin connection closed: ${maxConnections} were open, one with no request in flight (from ${remote}) made room for a new one`),
    evictedBusy: (remote, held) => dropped(remote, `admin connection closed: ${maxConnections} were open; one with a request in flight, the oldest of the ${held} from ${remote}, the address holding the most, made room for one from another address`),
    refused: (remote) => dropped(remote, `admin connection refused: ${maxConnections} already open, none of which may make room (each with a request in flight, or just opened, and no address holding more than one more than this one's)`),
  });
  const idleTimeoutMs = options.idleTimeoutMs ?? ADMIN_IDLE_TIMEOUT_MS;
  // the head's 10 s is enforced by the idle sweep (Node's own check comes every 30 s, above)
  closeIdleConnections(server, idleTimeoutMs, Math.min(CONNECTIONS_CHECKING_INTERVAL_MS, idleTimeoutMs), server.headersTimeout);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(listenFailed(`admin cannot listen on ${formatHostPort(listen)} (admin.listen)`, err));
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      // after binding, an error (an accept that fails) is logged, never thrown
      logListenerErrors(server, logger, 'admin');
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    host: listen.host,
    port: address.port,
    setHosts: (hosts) => guard.setHosts(hosts),
    // an answer in flight (a POST /reload ending while the sidecar stops) is still written
    close: () => closeGracefully(ADMIN_CLOSE_GRACE_MS),
  };
}
