// An upstream pool's books of its HTTP/2 sessions when the codec is `node` (http2-wrapper's
// agent over core http2; the meshcar codec keeps its own in h2-session-pool.ts): each session
// the agent opens is adopted (counted, its lifecycle managed by session-lifecycle.ts, listed
// under its endpoint for the fast path) and dropped when it closes; a session with a free
// stream slot is found per endpoint, and one gone silent under its probe is waited on rather
// than taken (heldForProbe); an endpoint that left DNS or the config has its sessions
// wound down, with both codecs, those a dial still under way at its removal opens included.
// Plain functions of the pool (upstream-pool.ts).

import type { ClientHttp2Session } from 'node:http2';
import { describeError } from '../errors.js';
import type { UpstreamEndpoint } from './endpoints.js';
import { endpointOfSocket, presentsOldCertificate } from './mutual-tls.js';
import type { NodeCodec } from './node-codec.js';
import type { UpstreamPool } from './upstream-pool.js';
import { watchGoaway } from './goaway-refused.js';
import { UpstreamPathGuard, type TrustNow } from './upstream-trust.js';
import { silentSinceProbeOf, warnDeadSession } from './session-keepalive.js';
import { holdSpent } from './probed-sessions.js';
import { cancelledError, type WaitToken } from './stream-wait.js';
import { countProbes } from './balancer.js';

const kGuard = Symbol('meshcar.upstreamPathGuard');
type GuardedSession = ClientHttp2Session & { [kGuard]?: UpstreamPathGuard };

/** A session to this endpoint that takes another stream now, if any. */
export function freeSession(pool: UpstreamPool, endpoint: UpstreamEndpoint): ClientHttp2Session | undefined {
  const sessions = pool.byEndpoint.get(endpoint);
  if (sessions === undefined) return undefined;
  // a session exists, so the agent that made it loaded the kit
  const { isGracefullyClosing, activeStreams, closeGracefully } = pool.nodeKit as NodeCodec;
  for (let i = 0; i < sessions.length; i++) {
    const session = sessions[i] as ClientHttp2Session;
    if (isGracefullyClosing(session) || pool.probed.skips(session)) continue;
    const open = activeStreams(session);
    const limit = session.remoteSettings.maxConcurrentStreams!;
    if (open < limit) return session;
    // SETTINGS_MAX_CONCURRENT_STREAMS lowered to 0 with nothing open: it can carry no request
    // (as h2-session-pool.ts: a session per request otherwise, each kept to its maximum age)
    if (limit === 0 && open === 0) closeGracefully(session);
  }
  return undefined;
}

/**
 * Before the agent picks a session for `endpoint` (it would take one gone silent under its
 * probe): waits for that probe's verdict, at most HOLD_LIMIT_MS, as the meshcar codec's pool does
 * (probed-sessions.ts); a session free of probes, or none with room, ends the wait at once.
 */
export async function heldForProbe(pool: UpstreamPool, endpoint: UpstreamEndpoint, wait: WaitToken): Promise<void> {
  let heldSince: number | undefined;
  for (;;) {
    if (wait.cancelled) throw cancelledError();
    if (freeSession(pool, endpoint) !== undefined) return;
    const probed = probedSession(pool, endpoint);
    if (probed === undefined) return;
    heldSince ??= performance.now();
    if (holdSpent(heldSince)) return;
    await pool.probed.holdTurn(probed, wait);
  }
}

/** A session of `endpoint` with a free slot that freeSession skipped for its probe. */
function probedSession(pool: UpstreamPool, endpoint: UpstreamEndpoint): ClientHttp2Session | undefined {
  const sessions = pool.byEndpoint.get(endpoint);
  if (sessions === undefined) return undefined;
  // a session exists, so the agent that made it loaded the kit
  const { isGracefullyClosing, activeStreams } = pool.nodeKit as NodeCodec;
  for (const session of sessions) {
    if (!isGracefullyClosing(session) && activeStreams(session) < session.remoteSettings.maxConcurrentStreams! && pool.probed.skips(session)) return session;
  }
  return undefined;
}

/** A session the agent opened: listed, counted and managed until it closes. */
export function adopt(pool: UpstreamPool, session: ClientHttp2Session): void {
  if (pool.closed) {
    session.destroy();
    return;
  }
  pool.sessions.add(session);
  const endpoint = endpointOfSocket(session.socket);
  if (endpoint) {
    const list = pool.byEndpoint.get(endpoint);
    if (list) list.push(session);
    else pool.byEndpoint.set(endpoint, [session]);
  }
  pool.deps.observer.upstreamSessionsChanged(pool.name, 1);
  const kit = pool.nodeKit as NodeCodec;
  kit.manageSession(
    session,
    pool.deps.settings,
    (why) => warnDeadSession(pool.deps.logger, pool.name, endpoint?.key, kit.activeStreams(session), why),
    endpoint && pool.probed.hook(session, countProbes(endpoint), () => silentSinceProbeOf(session)),
  );
  // streams above a GOAWAY's last id were never processed: retried whatever their method
  watchGoaway(session);
  // no new requests before the upstream's certificate path expires, cut at its expiry or once it no longer chains to our bundle
  const guard = UpstreamPathGuard.watch(session.socket, {
    retire: () => (pool.nodeKit as NodeCodec).closeGracefully(session),
    cut: (why) => {
      // a retired session still closing with nothing in flight loses nothing: said at debug
      const inFlight = (pool.nodeKit as NodeCodec).activeStreams(session);
      if (inFlight > 0) pool.deps.logger.warn({ upstream: pool.name, endpoint: endpoint?.key, inFlight }, `upstream session closed, requests in flight on it cut: ${why}`);
      else pool.deps.logger.debug({ upstream: pool.name, endpoint: endpoint?.key }, `upstream session closed: ${why}`);
      session.destroy();
    },
  });
  (session as GuardedSession)[kGuard] = guard;
  session.on('error', (err) => pool.deps.logger.debug({ upstream: pool.name, err: describeError(err) }, 'upstream session error'));
  session.once('close', () => {
    guard?.stop();
    pool.sessions.delete(session);
    const list = endpoint && pool.byEndpoint.get(endpoint);
    if (list) {
      list.splice(list.indexOf(session), 1);
      if (list.length === 0) pool.byEndpoint.delete(endpoint);
    }
    pool.deps.observer.upstreamSessionsChanged(pool.name, -1);
  });
  // a bundle change during the dial reached no guard: checked now (cut if it no longer vouches)
  guard?.catchUp(pool.deps.identity.tls().anchorsPem);
  // a rotation while its SETTINGS were awaited reached no session: the requests queued for it
  // take their streams first (before an immediate), then it winds down
  if (presentsOldCertificate(session.socket, pool.deps.identity)) setImmediate(() => kit.closeGracefully(session));
  pool.closeIfUnused();
  if (endpoint) closeIfRemoved(pool, endpoint);
}

/** The trust bundle changed: sessions and WebSocket tunnels whose upstream no longer chains to it are cut (upstream-trust.ts). */
export function sessionsTrustChanged(pool: UpstreamPool, trust: TrustNow): void {
  for (const session of [...pool.sessions]) (session as GuardedSession)[kGuard]?.trustChanged(trust);
  for (const guard of [...pool.tunnelGuards]) guard.trustChanged(trust);
}

/** An address left DNS or the config (a reload): its sessions wind down, its TLS ticket goes. */
export function retire(pool: UpstreamPool, endpoint: UpstreamEndpoint): void {
  pool.health.forget(endpoint);
  pool.nodeAgent?.forgetTlsSessions(endpoint.key);
  pool.own?.forgetTlsSessions(endpoint.key);
  closeSessionsOf(pool, endpoint);
}

/**
 * A removed endpoint's sessions close once no request runs on it or waits for it. Called when
 * a session is adopted, a stream closes and a wait for a stream ends: a dial the removal
 * overtook (TCP or TLS still under way) adopts its session after retire() ran, and that
 * session was kept, pinged, to its maximum age, though no request would pick its endpoint
 * again. The request that started the dial is served on it first (closing at adoption would
 * have sent it to dial again).
 */
export function closeIfRemoved(pool: UpstreamPool, endpoint: UpstreamEndpoint): void {
  if (endpoint.outstanding === 0 && !pool.endpoints.has(endpoint)) closeSessionsOf(pool, endpoint);
}

function closeSessionsOf(pool: UpstreamPool, endpoint: UpstreamEndpoint): void {
  pool.own?.closeGracefully(endpoint);
  const kit = pool.nodeKit;
  if (!kit) return;
  for (const session of pool.sessions) {
    if (endpointOfSocket(session.socket) === endpoint && !kit.isGracefullyClosing(session)) kit.closeGracefully(session);
  }
}
