// The CA's HTTPS API (contract: CA HTTP API). It presents a leaf from its own issuer with the
// SPIFFE ID spiffe://<td>/meshcar/ca and asks for no client certificate: first issuance comes
// with a join token, renewal with the current SVID's proof for the connection (client-auth.ts,
// src/pki/svid-proof.ts), both in the Authorization header, both judged after the handshake
// under the rate limit. (Asking for a certificate had OpenSSL check any chain a client sent
// before the CA saw the connection: 0.4 s of CPU per handshake for anyone who could connect.)
// The SVID is judged again on every request, since a keep-alive connection can outlive it.
// What a connection may hold (timeouts, counts, probe rate) is in connection-limits.ts.

import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { constants as cryptoConstants, createPublicKey, X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { MeshcarError, listenFailed } from '../errors.js';
import { parseDuration } from '../config/duration.js';
import { formatHostPort } from '../config/address.js';
import { asMeshcarError, sendError, sendJson } from '../http/status.js';
import { readJsonBody, refuseJsonHead } from '../http/read-body.js';
import { servedTarget } from '../http/served-target.js';
import { keepEveryHeadLine } from '../http/head-size.js';
import { DenialAudit } from './denial-audit.js';
import { KeyedTokenBuckets, type RateLimitSpec } from '../http/token-bucket.js';
import { CONNECTIONS_CHECKING_INTERVAL_MS, closeIdleConnections } from '../http/idle-connections.js';
import { gracefulCloser } from '../http/graceful-close.js';
import { unansweredSignal } from '../http/unanswered-signal.js';
import { generateWorkloadKey } from '../pki/keys.js';
import { caSpiffeId } from '../identity/spiffe-id.js';
import { TLS_POLICY } from '../identity/tls-contexts.js';
import type { Metrics } from '../metrics/registry.js';
import type { Authority } from './authority.js';
import { QUOTED_VALUE_LIMIT } from './authority.js';
import { clip } from '../clip.js';
import { authenticate } from './client-auth.js';
import { guardConnections } from './connection-guard.js';
import { answerParserRefusals } from './parser-refusals.js';
import type { CaRuntime } from './runtime.js';
import { WallClockTimer } from '../wall-clock-timer.js';
import { freshBeforeHandshake } from './handshake-freshness.js';
import { countCaDenial, isCaDenialReason, zeroCaDenials } from './denial-reasons.js';
import { CA_CONNECTION_LIMITS, type CaConnectionLimits } from './connection-limits.js';
import { answerPlainHttp } from '../tls-failures/plain-http-answer.js';
import type { ServerLeafLifetime } from './leaf-lifetime.js';
import { SPEND_LOCK_WAIT_MS } from './token-ledger.js';

export const SIGN_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * No session tickets, and so no resumption (Node keeps no server-side session cache unless
 * asked): a CA is called rarely, a full handshake costs little, and each connection gets its
 * own exporter value for the SVID proofs made on it. Passed again on every setSecureContext,
 * which would otherwise drop it. The rest is the sidecars' TLS (tls-contexts.ts): no
 * renegotiation, and on TLS 1.2 only ECDHE with an AEAD cipher, where Node's default list
 * still offers CBC suites.
 */
const TLS_OPTIONS = Object.freeze({ ...TLS_POLICY, secureOptions: TLS_POLICY.secureOptions | cryptoConstants.SSL_OP_NO_TICKET });

export interface CaServerOptions {
  /** The CA's material, reloaded when its folder changes (a rotation). */
  readonly ca: CaRuntime;
  readonly host: string;
  readonly port: number;
  readonly serverNames: readonly string[];
  readonly rateLimit: RateLimitSpec;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** CA_CONNECTION_LIMITS unless given (tests use short ones). */
  readonly connectionLimits?: Partial<CaConnectionLimits>;
  /** Keeps this server's maxTtl recorded for the root rotation steps, before each leaf (leaf-lifetime.ts). */
  readonly leafLifetime?: ServerLeafLifetime;
}

export interface RunningCaServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The CA server's own leaf from the signing issuer. */
async function serverCredentials(authority: Authority, serverNames: readonly string[], lifetimeMs: number): Promise<{ key: string; cert: string; notBefore: Date; notAfter: Date }> {
  const keys = await generateWorkloadKey();
  const spki = createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' });
  const issued = await authority.issueServerCertificate(caSpiffeId(authority.trustDomain), spki, lifetimeMs, serverNames);
  const notBefore = new Date(new X509Certificate(issued.certificate).validFrom);
  return { key: keys.privateKeyPem, cert: issued.chain, notBefore, notAfter: new Date(issued.notAfter) };
}

/**
 * The client's address. A TLS socket asks its TCP connection, and one reset by its client right
 * after its request (before the request is seen) has none to give: such requests were audited as
 * from "unknown" and rate-limited in one bucket of that name (a re-review: 60 of 60). The TCP
 * socket keeps the address it was asked for at accept (the per-address limits read it).
 */
function clientAddress(socket: Socket & { _parent?: Socket | null }): string {
  return socket.remoteAddress ?? socket._parent?.remoteAddress ?? 'unknown';
}

export async function startCaServer(options: CaServerOptions): Promise<RunningCaServer> {
  const { ca, metrics, logger } = options;
  const audit = logger.child({ component: 'ca-audit' });
  // every issuance is audited; a denial too, but those anyone can cause are rate-limited (denial-audit.ts)
  const denials = new DenialAudit(audit);
  zeroCaDenials(metrics);
  const limiter = new KeyedTokenBuckets(options.rateLimit);
  const limits: CaConnectionLimits = { ...CA_CONNECTION_LIMITS, ...options.connectionLimits };
  const probeLimiter = new KeyedTokenBuckets({ perSecond: limits.probeRatePerSecond, burst: limits.probeBurst });
  let credentialsFrom = ca.current();
  let credentials = await serverCredentials(credentialsFrom, options.serverNames, limits.serverCertificateTtlMs);

  async function handleSign(req: IncomingMessage, res: ServerResponse, client: string): Promise<void> {
    let who: Record<string, unknown> = { client };
    let asked: string | undefined;
    // from the request's arrival: a client gone during the checks below spends no token either
    const requester = unansweredSignal(req, res);
    const arrivedAt = performance.now();
    try {
      // a rotation done since the last request signs this one
      const authority = await ca.fresh();
      const authenticated = await authenticate(req, authority);
      who = { client, ...authenticated.who };
      asked = authenticated.grant.spiffeId;
      // the client waiting to send its body hears "go on" only now that it may (checkContinue),
      // and only if its head does not already say the body will be refused
      refuseJsonHead(req, SIGN_BODY_LIMIT_BYTES);
      if (awaitingContinue.delete(req)) res.writeContinue();
      const body = await readJsonBody(req, SIGN_BODY_LIMIT_BYTES);
      const { csr, ttl } = (body ?? {}) as { csr?: unknown; ttl?: unknown };
      if (typeof csr !== 'string') throw new MeshcarError('bad_request', 'the body must be JSON {"csr": "<PEM PKCS#10>"}');
      let ttlMs: number | undefined;
      if (ttl !== undefined) {
        ttlMs = typeof ttl === 'string' ? parseDuration(ttl) : undefined;
        // a string quoted (cut first), anything else named by its type: JSON.stringify of a
        // deeply nested array (20,000 levels fit the body limit) overflowed the stack (500)
        const got = typeof ttl === 'string' ? JSON.stringify(clip(ttl, QUOTED_VALUE_LIMIT)) : Array.isArray(ttl) ? 'an array' : ttl === null ? 'null' : typeof ttl === 'object' ? 'an object' : `a ${typeof ttl}`;
        if (ttlMs === undefined || ttlMs < 1000) throw new MeshcarError('bad_request', `"ttl" must be a duration of at least 1s such as "24h", got ${got}`);
      }
      // The body may have taken up to requestTimeout since the head was judged: who may ask,
      // and which CA signs, are judged again now, not as of the head. Meanwhile the token may
      // have expired, the SVID expired or lost its root to a retire, the issuer
      // been rotated; signing with the head's verdict gave a fresh SVID under a retired root.
      // This server's maxTtl is kept recorded first: that may wait for the lock (as a spend,
      // from the request's arrival: the sidecar gives up at 10 s), and a rotation step that
      // held it is then seen by fresh() (with the authority from before the step, the leaf
      // outlived the step's waits).
      await options.leafLifetime?.beforeSign(arrivedAt + SPEND_LOCK_WAIT_MS);
      const signing = await ca.fresh();
      const current = await authenticate(req, signing);
      if (current.grant.spiffeId !== asked) throw new MeshcarError('unauthenticated', 'the request\'s credentials changed while its body was read');
      const issued = await signing.sign(current.grant, csr, ttlMs, requester);
      metrics.caCertificatesIssued.inc();
      audit.info({ event: 'ca.issue', result: 'issued', ...who, spiffeId: issued.spiffeId, serial: issued.serial, notAfter: issued.notAfter }, 'certificate issued');
      const { serial: _serial, ...response } = issued;
      sendJson(res, 200, response);
    } catch (err) {
      const error = asMeshcarError(err);
      if (error.code === 'client_closed') return clientLeft(req, client, error, { ...who, spiffeId: asked });
      if (error.code === 'internal' || !isCaDenialReason(error.code)) logger.error({ err, code: error.code }, 'signing failed');
      countCaDenial(metrics, error.code);
      denials.denied(client, error, { ...who, spiffeId: asked });
      answerError(req, res, error);
    }
  }

  /**
   * A sign request whose connection closed before its body was whole: the client went away, or
   * the parser cut a body too slow with its 408 (counted there as request_timeout). No CA fault,
   * so neither `internal` nor an error line, and no answer to write; audited and counted once,
   * under the parser's reason when it answered, else client_closed.
   */
  function clientLeft(req: IncomingMessage, client: string, error: MeshcarError, who: Record<string, unknown>): void {
    const answered = parserRefusalOf(req.socket);
    if (answered === undefined) countCaDenial(metrics, error.code);
    denials.denied(client, answered ?? error, who);
    logger.debug({ client, code: (answered ?? error).code }, 'sign request ended by its connection before it was answered');
  }

  /**
   * A refusal written before the request's body was read in full (a 413 on its declared length,
   * a 401 before it) also closes the connection: kept alive, Node would read the rest of the
   * body only to throw it away, and a body that never comes would end in a second answer (408)
   * on a connection its client may be reusing for the next request.
   */
  function answerError(req: IncomingMessage, res: ServerResponse, error: MeshcarError): void {
    if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
    sendError(res, error);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // a head within 16 KiB as written, HTTP/1.x with one Host (none on HTTP/1.1 is our JSON 400,
    // not Node's bare one), the target in origin-form or absolute-form (RFC 9112 §3.2, §3.2.2)
    const { path } = servedTarget(req, res);
    const client = clientAddress(req.socket);
    // every path is rate limited, unknown ones too: an answer of any kind costs the CA
    const probe = path === '/healthz' || path === '/metrics';
    const verdict = (probe ? probeLimiter : limiter).take(client);
    if (!verdict.allowed) {
      const refused = new MeshcarError('rate_limited', `too many requests from ${client}; retry later`, { retryAfterSeconds: verdict.retryAfterSeconds });
      // a sign request turned away is a denial like any other: audited (as one that proved nothing)
      if (path === '/v1/sign') denials.denied(client, refused, { client });
      throw refused;
    }
    if (probe && req.method !== 'GET' && req.method !== 'HEAD') throw new MeshcarError('method_not_allowed', `use GET ${path}`, { allow: 'GET, HEAD' });
    if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (path === '/metrics') {
      await ca.fresh(); // the expiry gauges show the folder as it is now
      const text = await metrics.render();
      res.writeHead(200, { 'content-type': metrics.contentType() });
      res.end(text);
      return;
    }
    if (path !== '/v1/sign' && path !== '/v1/bundle') throw new MeshcarError('not_found', `no such endpoint: ${clip(path, QUOTED_VALUE_LIMIT)}`);
    if (path === '/v1/bundle') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new MeshcarError('method_not_allowed', 'use GET /v1/bundle', { allow: 'GET, HEAD' });
      res.writeHead(200, { 'content-type': 'application/x-pem-file' });
      res.end((await ca.fresh()).material.bundlePem);
      return;
    }
    if (req.method !== 'POST') throw new MeshcarError('method_not_allowed', 'use POST /v1/sign', { allow: 'POST' });
    await handleSign(req, res, client);
  }

  // Requests sent with Expect: 100-continue whose 100 is not sent yet. Node sends it at once
  // unless 'checkContinue' is listened to; the CA sends it once the caller is authenticated,
  // so an unauthenticated client is refused before it uploads its body, as RFC 9110 10.1.1
  // intends (a server may answer the final status instead of 100)
  const awaitingContinue = new WeakSet<IncomingMessage>();
  const server: Server = createServer(
    {
      key: credentials.key,
      cert: credentials.cert,
      // a missing Host is answered by route(), as JSON and counted
      requireHostHeader: false,
      ...TLS_OPTIONS,
      handshakeTimeout: limits.handshakeTimeoutMs,
      connectionsCheckingInterval: Math.min(CONNECTIONS_CHECKING_INTERVAL_MS, limits.headersTimeoutMs),
    },
    (req, res) => {
      route(req, res).catch((err: unknown) => {
        const error = asMeshcarError(err);
        if (error.code === 'headers_too_large' || error.code === 'bad_request' || error.code === 'rate_limited' || error.code === 'not_found' || error.code === 'method_not_allowed') countCaDenial(metrics, error.code);
        if (error.code === 'internal') logger.error({ err }, 'CA request failed');
        answerError(req, res, error);
      });
    },
  );
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.add(req);
    server.emit('request', req, res);
  });
  // a head's every line is kept, so that its size is judged whole (servedTarget, head-size.ts)
  keepEveryHeadLine(server);
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  guardConnections(server, limits, metrics, logger);
  closeIdleConnections(server, limits.idleTimeoutMs, Math.min(CONNECTIONS_CHECKING_INTERVAL_MS, limits.idleTimeoutMs));
  server.on('tlsClientError', (err: Error & { code?: string }, socket) => {
    logger.debug({ err: err.message }, 'TLS handshake with CA client failed');
    // plain HTTP (`curl http://` to the CA) gets a 400 saying to use https://, not an empty reply
    answerPlainHttp(err, socket, 'ca');
  });
  // what the parser refuses is answered as JSON like any other CA error (Node's own is bare)
  const parserRefusalOf = answerParserRefusals(server, limits, metrics, logger);
  const closeGracefully = gracefulCloser(server);

  // the server's own leaf is short-lived like any other; swap it in before it expires, and at
  // once after a rotation (a new issuer, new roots); by the
  // wall clock, so a host suspended and resumed renews it within 30 s, not after a timer's length
  const renewTimer = new WallClockTimer({ unref: true });
  let renewing: Promise<void> | undefined;
  /** The authority the last renewal was for, landed or not. */
  let triedFor = credentialsFrom;
  /** The certificate last found starting after now (a clock stepped back), renewed or not. */
  let steppedBackTried: typeof credentials | undefined;
  const renewNow = (): Promise<void> => {
    renewTimer.cancel();
    // fresh(): a CA whose certificate has lapsed gets no request that would show it a rotation
    const run: Promise<void> = ca
      .fresh()
      .then(async (authority) => {
        triedFor = authority;
        const fresh = await serverCredentials(authority, options.serverNames, limits.serverCertificateTtlMs);
        credentials = fresh;
        credentialsFrom = authority;
        server.setSecureContext({ key: fresh.key, cert: fresh.cert, ...TLS_OPTIONS });
      })
      .catch((err: unknown) => logger.error({ err }, 'renewing the CA server certificate failed; keeping the current one'))
      .finally(() => {
        if (renewing === run) renewing = undefined;
        scheduleRenewal();
      });
    renewing = run;
    return run;
  };
  // each handshake is made with the folder as it is now (handshake-freshness.ts): a change seen
  // here waits for the renewal it starts, or for one already under way
  freshBeforeHandshake(server, async () => {
    const authority = await ca.fresh();
    // made under a clock since stepped back (a host booted before NTP set it): it starts in
    // every client's future, so no sidecar could get or renew an SVID for the step's length
    // once per certificate: a renewal that fails (logged) is left to the timer, not tried (and
    // logged) again for every connection anyone opens
    if (credentials.notBefore.getTime() > Date.now() && renewing === undefined && steppedBackTried !== credentials) {
      steppedBackTried = credentials;
      logger.warn({ notBefore: credentials.notBefore.toISOString() }, `the CA server's own certificate starts at ${credentials.notBefore.toISOString()}, after now: the clock was stepped back; making a new one`);
      await renewNow();
      return;
    }
    if (authority === credentialsFrom) return;
    await (renewing ?? renewNow());
    // one under way may have been for the folder before this change; one for this folder that
    // failed (logged) is not tried again per connection, which anyone can open: the timer does
    if (credentialsFrom !== authority && triedFor !== authority) await renewNow();
  }, logger);
  const scheduleRenewal = () => {
    const delay = Math.max(1000, (credentials.notAfter.getTime() - Date.now()) / 2);
    renewTimer.set(Date.now() + delay, () => void renewNow());
  };
  scheduleRenewal();
  const onReloaded = () => void renewNow();
  ca.on('reloaded', onReloaded);

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(listenFailed(`the CA cannot listen on ${formatHostPort(options)} (listen)`, err));
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  logger.info({ url: `https://${host}:${port}`, spiffeId: caSpiffeId(ca.current().trustDomain) }, 'CA server listening');
  return {
    url: `https://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        renewTimer.cancel();
        ca.off('reloaded', onReloaded);
        // requests in flight are answered (their connections closed after), for up to drainGraceMs
        void closeGracefully(limits.drainGraceMs).then(resolve);
      }),
  };
}
