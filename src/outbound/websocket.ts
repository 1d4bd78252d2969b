// An HTTP/1.1 Upgrade request from the app (WebSocket), carried over its own mutual TLS
// connection: a tunnel is a long-lived byte stream that would pin an HTTP/2 session's flow
// control, and HTTP/1.1 Upgrade has no HTTP/2 form our inbound peers must support. We dial the
// chosen endpoint (same SecureContext, ALPN http/1.1, same SPIFFE check), send the request
// head (node:http's client on that socket parses the answer) and, on 101 only, relay the
// handshake answer and pipe both ways until either side ends, or no byte has moved either way
// for the upstream's `tunnelIdleTimeout`. Any other answer is relayed with
// its body and both connections close: joining them anyway would let the app's next bytes
// reach the upstream raw, past routing, OpenAPI enforcement and x-request-id. The app's bytes
// sent after its head wait for the 101 for the same reason. With the upstream's OpenAPI spec,
// the head is held against it first (schema-check.ts). The heads as each side reads them
// (which fields go on, written back byte for byte) are made in websocket-heads.ts.

import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { MeshcarError, describeError, isMeshcarError } from '../errors.js';
import { announcesBody } from '../http/body-framing.js';
import { hostFieldProblem } from '../http/host-field.js';
import { requestIdOf } from '../http/request-id.js';
import { errorBodyBytes, rawErrorResponse, statusFor } from '../http/status.js';
import { offersH2c, switchFieldsMissing, unofferedProtocol } from '../http/upgrade.js';
import { clip } from '../clip.js';
import { closeWhenFlushed, markTunnel, relayEnd, resetTunnelSide, tcpUnder } from '../http/tunnel-reset.js';
import { cutWhenIdle } from '../http/tunnel-idle.js';
import type { SchemaGuard } from '../schema/guard.js';
import { countBody, Exchange, type OutboundContext } from './exchange.js';
import { checkUpgrade } from './schema-check.js';
import { hostName, parseRequestTarget, pathOnly, targetAuthorityProblem, targetFormProblem } from './router.js';
import { resetConnection } from './mutual-tls.js';
import { stillTrusted, UpstreamPathGuard } from './upstream-trust.js';
import { openTunnel, type OpenedTunnel } from './pool-tunnel.js';
import { upgradeAnswerUnreadable, upgradeUnanswered, upstreamReset, upstreamTimeout } from './upstream-errors.js';
import { ANSWER_DROPPED, requestFields, responseHead } from './websocket-heads.js';
import { switchingFields, switchingHead } from '../http/switching-fields.js';
import { UPSTREAM_MAX_HEAD_BYTES } from './head-limits.js';
import { loggedPath } from '../metrics/access-log.js';
import { formatDuration } from '../config/duration.js';

function ignore(): void {}

/** pipe() options: the upstream's end is relayed by relayEnd, not by the pipe. */
const KEEP_OPEN = Object.freeze({ end: false });


/** `guards`: the upstreams' OpenAPI checks (by upstream name), which hold the Upgrade's head too. */
export function tunnelUpgrade(ctx: OutboundContext, guards: ReadonlyMap<string, SchemaGuard>, req: IncomingMessage, socket: Socket, head: Buffer): void {
  const exchange = new Exchange(ctx, req.method ?? 'GET', requestIdOf(req.headers));
  const target = parseRequestTarget(req.url);
  exchange.path = pathOnly(target.path);
  const authority = target.authority ?? req.headers.host;
  const pool = ctx.router.lookup(authority);

  ctx.activity.enter();
  socket.on('error', ignore);
  socket.setTimeout(0); // no keep-alive timeout: until the 101, the upstream's timeout applies
  // a tunnel carries half-closes: an app that sends its FIN before the 101 still reads the
  // answer and what the far app sends after it, and its end goes on once the tunnel opens
  // (below). With Node's close-on-FIN the connection closed at once, the 101 and the bytes
  // after the head lost, and the far app's tunnel broken (a review)
  socket.allowHalfOpen = true;

  let upstream: TLSSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failed = false;
  let endpointKey = '';
  // in flight (for drain) until the refusal is out, or the tunnel closes: not until an app that
  // keeps its side of a refused connection open lets go
  let active = true;
  const leave = () => {
    if (!active) return;
    active = false;
    ctx.activity.leave();
  };

  /** `upgraded`: the upstream answered 101, so its far app is in a tunnel, where a FIN reads as a clean end: it is reset. */
  const fail = (err: MeshcarError, upgraded = false) => {
    if (failed) return;
    failed = true;
    if (timer) clearTimeout(timer);
    exchange.errorCode = err.code;
    if (upgraded && upstream !== undefined) resetConnection(upstream);
    else upstream?.destroy();
    if (exchange.status !== 0) {
      // a tunnel's upstream broke (reset): the app is reset too, never sent a FIN, which in a
      // tunnel that carries half-closes reads as the far app's clean end (tunnel-reset.ts); and
      // a refusal's body, relayed with no framing (ANSWER_DROPPED), would read as whole at a FIN
      resetTunnelSide(socket);
      return;
    }
    exchange.status = statusFor(err.code);
    if (!socket.destroyed && socket.writable) exchange.bytesOut = errorBodyBytes(err, exchange.requestId, undefined, exchange.method);
    exchange.finish();
    leave();
    if (socket.destroyed || !socket.writable) socket.destroy();
    // end() alone left the connection half-open for as long as the app kept its side open
    else {
      socket.end(rawErrorResponse(err, exchange.requestId));
      socket.destroySoon();
    }
  };

  socket.once('close', () => {
    if (timer) clearTimeout(timer);
    // the app is gone, so nothing the upstream sends can be delivered: close the tunnel once
    // what the app sent has left (its FIN relayed, the upstream may still be reading). Left
    // open after that FIN, it stayed half-open until the far sidecar's tunnelIdleTimeout.
    if (upstream) closeWhenFlushed(upstream);
    leave();
    exchange.finish();
  });

  const hostRefused = hostFieldProblem(req, ' (send Host: <upstream>)');
  if (hostRefused !== undefined) {
    fail(new MeshcarError('bad_request', hostRefused));
    return;
  }
  const targetRefused = targetFormProblem(req.method ?? 'GET', target.path);
  if (targetRefused !== undefined) {
    fail(new MeshcarError('bad_request', targetRefused));
    return;
  }
  // before routing, as for requests (forward-http1.ts): the whole authority becomes the upstream's Host
  const authorityRefused = targetAuthorityProblem(target, authority);
  if (authorityRefused !== undefined) {
    fail(new MeshcarError('bad_request', authorityRefused));
    return;
  }
  if (!pool) {
    const name = authority ? hostName(authority) : '';
    fail(new MeshcarError('no_route', name ? ctx.router.noRouteMessage(name) : 'the request names no host (send Host: <upstream>)'));
    return;
  }
  exchange.peer = pool.name;
  if (offersH2c(req.headers.upgrade)) {
    fail(new MeshcarError('bad_request', 'Upgrade: h2c is not supported; speak HTTP/2 with prior knowledge instead'));
    return;
  }
  // the bytes after an Upgrade head belong to the new protocol: a body announced as well would
  // reach the upstream unframed, to be read as whatever the upstream likes
  if (announcesBody(req.headers)) {
    fail(new MeshcarError('bad_request', 'an Upgrade request cannot carry a body (Content-Length or Transfer-Encoding)'));
    return;
  }
  const refused = checkUpgrade(guards, pool.name, req, target.path, exchange);
  if (refused !== undefined) {
    fail(refused);
    return;
  }

  const onOpened = ({ socket: up, endpoint }: OpenedTunnel) => {
    endpointKey = endpoint.key;
    exchange.endpoint = endpoint.key;
    if (failed || socket.destroyed) {
      up.destroy();
      return;
    }
    upstream = up;
    // bytes of an answer head that came before the end: then it was no refusal unanswered (a
    // meshcar never sends part of a head), but an answer cut short
    let headBytes = 0;
    const countHead = (chunk: Buffer) => void (headBytes += chunk.length);
    const unanswered = (detail: string) => (headBytes > 0 ? upstreamReset(endpointKey, `${detail}, after ${headBytes} bytes of its answer's head`) : upgradeUnanswered(endpointKey, detail));
    up.on('error', (err) => fail(exchange.status === 0 ? unanswered(describeError(err)) : upstreamReset(endpointKey, describeError(err))));
    up.once('close', () => {
      if (exchange.status === 0) fail(unanswered('the connection closed'));
      else if (exchange.status === 101 && !socket.writableEnded) socket.destroy(); // a refusal's relay ends itself
    });
    // node:http's client on the tunnel's socket: it writes the head and parses the answer (101
    // or not, and a refusal's body framing) as strictly as any other response
    const handshake = http.request({
      createConnection: () => up,
      method: req.method ?? 'GET',
      path: target.path,
      headers: requestFields(req, authority as string, exchange.requestId),
      setHost: false,
      // the answer heads the outbound takes (the inbound relays an app's up to 64 KiB), not
      // Node's 16 KiB: a 30 KB 101 was a 502 here after the far side had opened its tunnel
      maxHeaderSize: UPSTREAM_MAX_HEAD_BYTES,
    });
    // llhttp's refusals (HPE_*: not HTTP, a head over the limit) are an answer that could not be read
    handshake.on('error', (err: NodeJS.ErrnoException) => fail(err.code?.startsWith('HPE_') ? upgradeAnswerUnreadable(endpointKey, describeError(err)) : unanswered(describeError(err))));
    // counted once the client's parser reads the socket (its listener first: a listener of ours
    // alone would set the socket flowing with no parser to take the bytes)
    handshake.once('socket', () => up.on('data', countHead));
    const stopCounting = () => void up.off('data', countHead);
    handshake.once('response', stopCounting).once('upgrade', stopCounting);
    handshake.on('upgrade', (res: IncomingMessage, _up: Duplex, upHead: Buffer) => {
      // a switch to a protocol the app did not offer (RFC 9110 §7.8): never a tunnel
      const stray = unofferedProtocol(req.headers.upgrade, res.headers.upgrade);
      if (stray !== undefined) {
        fail(new MeshcarError('bad_gateway', `${endpointKey} answered 101 switching to ${clip(stray, 64)}, which the request did not offer`), true);
        return;
      }
      // the bundle changed since the dial verified the upstream (no guard watched it yet): the
      // tunnel opens only to an upstream the bundle in force still vouches for
      if (!stillTrusted(up, pool.deps.identity.tls().anchorsPem)) {
        fail(new MeshcarError('upstream_identity_mismatch', `${endpointKey}'s certificate no longer chains to a root of the trust bundle (it changed while the upgrade was answered)`), true);
        return;
      }
      if (timer) clearTimeout(timer);
      exchange.status = 101;
      exchange.finish(); // the handshake is the request; the tunnel's lifetime is not its duration
      // idle for the upstream's tunnelIdleTimeout (cutWhenIdle, below), or a drain that runs
      // out (listener.ts): both sides reset, as the inbound cuts them. A FIN would reach the far
      // app as a half-close, to sit on until the far sidecar's own limit, and the app as the far
      // app's clean end, on which it kept its side open. The app's first: reset after the
      // upstream's, the app's connection went out with a FIN
      const cut = () => {
        resetTunnelSide(socket);
        resetConnection(up);
      };
      markTunnel(socket, cut);
      // nor past the upstream's certificate path, nor a bundle change that no longer vouches for
      // it (upstream-trust.ts, via the pool as its sessions): a tunnel cannot wind down, so it is cut then
      const cutFor = (why: string) => {
        pool.deps.logger.warn({ upstream: pool.name, endpoint: endpointKey }, `WebSocket tunnel cut: ${why}`);
        cut();
      };
      const guard = UpstreamPathGuard.watch(up, { retire: () => undefined, cut: cutFor });
      if (guard) pool.tunnelGuards.add(guard);
      up.once('close', () => {
        guard?.stop();
        if (guard) pool.tunnelGuards.delete(guard);
      });
      // half-close carries through, as Envoy's upgrade proxying does: the app's FIN ends our
      // write toward the upstream (pipe), and the upstream's later bytes still reach the app.
      // Set on these two sockets only: plain requests keep Node's close-on-FIN.
      up.allowHalfOpen = true;
      // the app reset its connection: the upstream is reset as well (before 'close', which
      // would otherwise flush and close it with a FIN: a clean end for the far app)
      socket.on('error', () => resetConnection(up));
      // latin1: node:http read the head one character a byte, so obs-text goes on as it came
      socket.write(switchingHead(res.statusMessage, switchingFields(res.rawHeaders)), 'latin1');
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) up.write(head);
      // each side's end goes on once it is known to be a FIN: libuv reads a reset that came
      // right behind data (the far sidecar resetting just after the 101, an app that writes
      // and resets in one turn) as an end, which piped on reached the other side as a clean
      // end and left the app's connection half-open here, in flight (relayEnd)
      up.pipe(socket, KEEP_OPEN);
      socket.pipe(up, KEEP_OPEN);
      up.once('end', () => relayEnd(up, tcpUnder(up), socket, () => fail(upstreamReset(endpointKey, 'the connection was reset'))));
      // after the app's FIN, its socket is asked every second whether it was reset since (an app
      // that half-closes, then crashes): the upstream is then reset, so the far app sees a reset
      // and neither sidecar holds the tunnel until tunnelIdleTimeout (relayEnd)
      const appEnded = () => relayEnd(socket, socket, up, () => resetConnection(up));
      // its FIN may have come before the 101, with no bytes behind it to hold the end back:
      // relayed on the next turn, not from inside this read of the upstream's TLS socket, where
      // ending it lost the TLS records after the 101's in the same read (the far app's first
      // bytes, seen in the test)
      if (socket.readableEnded) setImmediate(appEnded);
      else socket.once('end', appEnded);
      // counted from the last byte either way, not by the app socket's own timer (which stays
      // 0): the second's asking writes nothing, yet would re-arm that timer (tunnel-idle.ts)
      cutWhenIdle(socket, up, pool.tunnelIdleTimeoutMs, () => {
        // said once, at info: an idle cut reads to both apps as a reset, as a crashed peer would
        pool.deps.logger.info({ upstream: pool.name, endpoint: endpointKey, path: loggedPath(exchange.path), requestId: exchange.requestId }, `WebSocket tunnel cut: no bytes either way for ${formatDuration(pool.tunnelIdleTimeoutMs)} (tunnelIdleTimeout)`);
        cut();
      });
      // a reload named another identity for this upstream while the upgrade was answered (no
      // guard watched it then: cutTunnels): the peer is no longer the one the config names, and
      // the tunnel, set up as any, is cut as it opens, as one open at the reload was
      const revoked = pool.tunnelsRevoked;
      if (revoked === undefined) return;
      if (guard) guard.revoke(revoked);
      else cutFor(revoked);
    });
    handshake.on('response', (res: IncomingMessage) => {
      // a 101 without an Upgrade field (RFC 9110 §15.2.2 requires one), or without the Connection
      // option that goes with it (§7.8), is no switch node:http
      // would make: relayed, the app read "Switching Protocols" on a connection that closed
      if (res.statusCode === 101) {
        // the upstream may take itself as switched: reset, as any 101 refused
        fail(new MeshcarError('bad_gateway', `${endpointKey} answered 101 Switching Protocols ${switchFieldsMissing(res.headers)}`), true);
        return;
      }
      // node:http takes any status of up to three digits (0, 99, 600): as on every other
      // answer, one outside 200-599 is a 502, never relayed (the app's parser would choke on it)
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 599) {
        fail(new MeshcarError('bad_gateway', `${endpointKey} answered the upgrade with status ${status}, not 101 nor 200-599`));
        return;
      }
      // not switching: relay the answer, then close both; the app's further bytes go nowhere
      if (timer) clearTimeout(timer);
      // as any answer: a remote sidecar's refusal (its x-meshcar-error) is this request's error
      // too, and the record, made once the answer is relayed, carries its body's bytes
      exchange.answered(status, res.headers);
      socket.on('data', ignore); // read and dropped, so the app is never stuck writing to us
      // a body without a length ends with the connection (no chunked framing is kept)
      socket.write(responseHead(res, ANSWER_DROPPED), 'latin1');
      res.pipe(socket, { end: false });
      countBody(res, exchange, 'out');
      res.once('error', ignore); // a body cut short: 'close' below, not complete
      // the head's deadline is past: the body is held to the upstream's idleTimeout, as any
      // answer's (nothing watched it: an upstream that stopped midway held both connections)
      if (pool.idleTimeoutMs > 0) {
        up.setTimeout(pool.idleTimeoutMs, () => {
          exchange.errorCode ??= 'upstream_timeout';
          up.destroy();
        });
      }
      res.once('close', () => {
        // cut short: recorded as the upstream breaking it off, as a plain answer's is
        if (!res.complete) exchange.errorCode ??= 'upstream_reset';
        exchange.finish();
        if (res.complete) socket.destroySoon(); // not end(): see fail()
        // reset, not a FIN: the body goes with no framing (ANSWER_DROPPED), ended by the
        // connection's end, and a FIN would give the app a body cut short as whole
        else resetTunnelSide(socket);
        up.destroy();
        leave();
      });
    });
    handshake.end();
  };

  const onOpenFailed = (err: unknown) => {
    fail(isMeshcarError(err) ? err : new MeshcarError('upstream_unavailable', `could not reach upstream ${pool.name}: ${describeError(err)}`, { cause: err }));
  };

  // a circuit slot for as long as the app's connection is open (refused, it is answered 503)
  const circuitOpen = pool.admitTunnel();
  if (circuitOpen !== undefined) {
    fail(circuitOpen);
    return;
  }
  if (socket.closed) pool.tunnelClosed();
  else socket.once('close', () => pool.tunnelClosed());
  // timeout 0: no deadline for the upstream's 101 (the dial has its own bound)
  if (pool.timeoutMs > 0) timer = setTimeout(() => fail(upstreamTimeout(pool.name, pool.timeoutMs, undefined, `outbound.upstreams.${pool.name}.timeout`)), pool.timeoutMs);
  openTunnel(pool).then(onOpened, onOpenFailed);
}
