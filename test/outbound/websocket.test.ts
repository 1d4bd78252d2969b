// WebSocket (HTTP/1.1 Upgrade) from the app, over raw sockets only: the request travels on its
// OWN mutual TLS connection (ALPN http/1.1, our SVID, the upstream's SPIFFE ID checked), the
// upstream's 101 comes back, then bytes flow both ways. Refusals are plain answers.

import t from 'tap';
import http, { type IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { peerIdentity } from '../../src/identity/peer-identity.js';
import { dispatchTlsSocket } from '../../src/http/protocol-dispatch.js';
import { APP_ID, defaultHandler, makePki, request, sleep, startOutbound, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import type { TestPki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const acceptOf = (key: string) => createHash('sha1').update(key + GUID).digest('base64');

interface SeenTunnel {
  alpn: string;
  callerId: string;
  head: IncomingMessage['headers'];
  url: string;
}

/** An upstream sidecar stand-in: one TLS port, h2 and http/1.1 by ALPN; /ws upgrades and echoes. */
async function startUpgradeUpstream(pki: TestPki, id: string) {
  const leaf = await pki.issue(id);
  const seen: SeenTunnel[] = [];
  const connections: Array<{ alpn: string }> = [];
  /** /ws-hold tunnels: they keep their side open after the app's FIN, and resolve when their socket closes. */
  const held: Array<Promise<void>> = [];
  /** /ws-quiet tunnels: a far app that keeps its side open after a FIN; resolves with what its socket saw, once closed. */
  const quiet: Array<Promise<string[]>> = [];
  const http1 = http.createServer((_req, res) => res.end('plain'));
  http1.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const tlsSocket = socket as TLSSocket;
    const caller = peerIdentity(tlsSocket, TD);
    seen.push({ alpn: String(tlsSocket.alpnProtocol), callerId: caller.ok ? caller.id.uri : '', head: req.headers, url: req.url ?? '' });
    if (req.url === '/ws-partial') {
      // part of a 101's head, then the end
      socket.end('HTTP/1.1 101 Switching Pro');
      return;
    }
    if (req.url === '/ws-garbage') {
      // a far side that is no HTTP server at all
      socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n');
      return;
    }
    if (req.url === '/ws-hold') {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
      socket.on('error', () => {});
      // a far end that stays after the app's FIN (Node would otherwise end its side at once)
      // and goes on sending: a tick every 50 ms, 100 at most, until its connection closes
      (socket as TLSSocket).allowHalfOpen = true;
      socket.once('end', () => {
        let ticks = 0;
        const tick = setInterval(() => (++ticks > 100 || socket.destroyed ? clearInterval(tick) : socket.write('tick')), 50);
        socket.once('close', () => clearInterval(tick));
      });
      held.push(new Promise((resolve) => socket.once('close', () => resolve())));
      return;
    }
    if (req.url === '/ws-quiet') {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
      (socket as TLSSocket).allowHalfOpen = true;
      const events: string[] = [];
      socket.on('end', () => events.push('end'));
      socket.on('error', (err: NodeJS.ErrnoException) => events.push(String(err.code)));
      quiet.push(new Promise((resolve) => socket.once('close', () => resolve(events))));
      return;
    }
    if (req.url === '/denied') {
      // as a meshcar inbound refuses an upgrade its policy does not allow
      const body = '{"error":"forbidden","message":"not allowed"}';
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-meshcar-error: forbidden\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    if (req.url !== '/ws') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nconnection: close\r\n\r\nno ws\n');
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptOf(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
    socket.on('data', (chunk: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), chunk])));
    // the app's FIN: one last message after it (half-close), then ours
    socket.on('end', () => socket.end('after-fin'));
    socket.on('error', () => {});
  });
  const h2 = http2.createServer();
  h2.on('stream', defaultHandler);
  const server = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, ...MTLS_SERVER_OPTIONS, ALPNProtocols: ['h2', 'http/1.1'] }, (socket) => {
    connections.push({ alpn: String(socket.alpnProtocol) });
    dispatchTlsSocket(socket, { http1, http2: h2 });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, seen, connections, held, quiet };
}

/** A raw client: sends a head, collects bytes, waits for patterns. */
/** `allowHalfOpen`: the client may read on after sending its FIN. */
async function rawClient(port: number, allowHalfOpen = false) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen });
  await once(socket, 'connect');
  let received = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  return {
    socket,
    closed,
    text: () => received.toString('latin1'),
    reset: () => (received = Buffer.alloc(0)),
    async waitFor(pattern: RegExp, timeoutMs = 3000): Promise<string> {
      const until = Date.now() + timeoutMs;
      while (!pattern.test(received.toString('latin1'))) {
        if (Date.now() > until) throw new Error(`no ${pattern} in ${JSON.stringify(received.toString('latin1'))}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return received.toString('latin1');
    },
  };
}

const upgradeHead = (path: string, host = 'payments', extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

t.test('WebSocket upgrade over its own mTLS connection', async (t) => {
  const logLines: Array<Record<string, unknown>> = [];
  const pki = await makePki(TD);
  const upstream = await startUpgradeUpstream(pki, UPSTREAM_ID);
  const impostor = await startUpgradeUpstream(pki, `spiffe://${TD}/svc/impostor`);
  const fx = await startOutbound(pki, [
    { name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] },
    { name: 'impostor', endpoints: [`127.0.0.1:${impostor.port}`], identity: UPSTREAM_ID },
    { name: 'quiet', endpoints: [`127.0.0.1:${upstream.port}`], tunnelIdleTimeoutMs: 1000 },
  ], { logger: memoryLogger(logLines) });
  t.teardown(async () => {
    await fx.close();
    upstream.server.close();
    impostor.server.close();
  });

  t.test('101, then bytes both ways', async (t) => {
    t.equal((await request(fx.port)).status, 200, 'an ordinary request first: it opens the pooled h2 session');
    const client = await rawClient(fx.port, true);
    t.teardown(() => client.socket.destroy());
    client.socket.write(upgradeHead('/ws', 'payments', 'x-request-id: ws-1\r\n'));
    const head = await client.waitFor(/\r\n\r\n/);
    t.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    t.match(head, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/, "the upstream's handshake answer, unchanged");
    client.reset();
    client.socket.write('hello');
    t.match(await client.waitFor(/echo:hello/), /echo:hello/);
    client.socket.write(' again');
    t.match(await client.waitFor(/echo: again/), /echo: again/, 'and again');

    const seen = upstream.seen[0];
    t.equal(seen?.alpn, 'http/1.1', 'the tunnel negotiated http/1.1');
    t.equal(seen?.callerId, APP_ID, 'and presented our SVID');
    t.equal(seen?.head.host, 'payments');
    t.equal(seen?.head.upgrade, 'websocket');
    t.match(String(seen?.head.connection), /upgrade/i, 'the upgrade headers are kept');
    t.equal(seen?.head['x-request-id'], 'ws-1');
    t.same(
      upstream.connections.map((c) => c.alpn),
      ['h2', 'http/1.1'],
      'its own connection: not the pooled HTTP/2 session',
    );
    client.socket.end();
    await client.waitFor(/after-fin$/);
    t.pass("the upstream's bytes after the app's FIN still reach the app (half-close)");
    await client.closed;
    const record = (await fx.observer.waitForRequests(2)).find((r) => r.requestId === 'ws-1');
    t.match(record, { peer: 'payments', status: 101, method: 'GET', path: '/ws', endpoint: `127.0.0.1:${upstream.port}` });
  });

  t.test('fields the Connection header names stay on this hop (RFC 9110 §7.6.1), as on any request', async (t) => {
    const client = await rawClient(fx.port, true);
    t.teardown(() => client.socket.destroy());
    const before = upstream.seen.length;
    client.socket.write(
      'GET /ws HTTP/1.1\r\nHost: payments\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Internal-User, Authorization\r\n' +
        'X-Internal-User: admin\r\nAuthorization: Basic c2VjcmV0\r\nX-End-To-End: kept\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-request-id: ws-named\r\n\r\n',
    );
    t.match(await client.waitFor(/\r\n\r\n/), /^HTTP\/1\.1 101 /, 'the switch goes through');
    const seen = upstream.seen[before];
    t.equal(seen?.head['x-request-id'], 'ws-named');
    t.equal(seen?.head['x-internal-user'], undefined, 'a field Connection names is not forwarded');
    t.equal(seen?.head.authorization, undefined, 'nor is Authorization when Connection names it');
    t.equal(seen?.head['x-end-to-end'], 'kept', 'other fields go on');
    t.equal(seen?.head.connection, 'Upgrade', 'Connection says the switch alone');
    t.equal(seen?.head.upgrade, 'websocket');
  });

  t.test('the app half-closes, then goes: the tunnel toward the upstream is closed, not left half-open', async (t) => {
    // review 28 M4: once the app's FIN had been relayed, its socket's close (here: the upstream
    // sends on, the gone app's side answers with a reset) left the upstream connection open
    // until the far sidecar's tunnelIdleTimeout (1 h by default), or for ever
    const client = await rawClient(fx.port, true);
    client.socket.write(upgradeHead('/ws-hold'));
    t.match(await client.waitFor(/\r\n\r\n/), /^HTTP\/1\.1 101 /);
    t.equal(upstream.held.length, 1, 'the upstream took the tunnel (before its 101)');
    const upstreamClosed = upstream.held[0]!;
    client.socket.end(); // the app's FIN: the upstream keeps its side open and sends on
    await client.waitFor(/tick/); // the FIN crossed
    client.socket.destroy();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([upstreamClosed.then(() => 'closed'), new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still open'), 3000)))]);
    clearTimeout(timer);
    t.equal(outcome, 'closed', "the upstream's tunnel connection closes once the app is gone");
  });

  t.test("the upstream's refusal is relayed as it is", async (t) => {
    const client = await rawClient(fx.port);
    client.socket.write(upgradeHead('/not-ws'));
    await client.closed;
    t.match(client.text(), /^HTTP\/1\.1 403 Forbidden\r\n[\s\S]*no ws/);
    // recorded as any answer: the app's own 403 is no error, its 6 body bytes are bytesOut
    for (let i = 0; i < 300 && !fx.observer.requests.some((r) => r.path === '/not-ws'); i++) await sleep(10);
    t.match(fx.observer.requests.find((r) => r.path === '/not-ws'), { status: 403, errorCode: undefined, bytesOut: 6 }, "the app's refusal: 403, no error, its body's bytes");
  });

  t.test("a remote sidecar's refusal counts as its error, with its body's bytes", async (t) => {
    const client = await rawClient(fx.port);
    client.socket.write(upgradeHead('/denied'));
    await client.closed;
    const body = client.text().split('\r\n\r\n')[1] ?? '';
    t.match(body, /"error":"forbidden"/);
    for (let i = 0; i < 300 && !fx.observer.requests.some((r) => r.path === '/denied'); i++) await sleep(10);
    // it was 403 without a reason (the callee's inbound counts forbidden) and 0 bytes
    t.match(fx.observer.requests.find((r) => r.path === '/denied'), { status: 403, errorCode: 'forbidden', bytesOut: body.length }, 'forbidden, as on the callee');
  });

  t.test("an upstream that answers the upgrade with no HTTP: 502 bad_gateway that says so, not a closed connection", async (t) => {
    const client = await rawClient(fx.port);
    t.teardown(() => client.socket.destroy());
    client.socket.write(upgradeHead('/ws-garbage'));
    await client.closed;
    t.match(client.text(), /^HTTP\/1\.1 502 /);
    t.match(client.text(), /x-meshcar-error: bad_gateway/i);
    t.match(client.text(), /answered the upgrade with no HTTP\/1\.1 answer meshcar could read: Parse Error/, 'the message says what came');
    t.notMatch(client.text(), /maxConnectionsPerCaller/, 'and blames no connection cap');
  });

  t.test('an upstream that sends part of an answer head and ends: a 502 saying so, not "before answering"', async (t) => {
    const client = await rawClient(fx.port);
    t.teardown(() => client.socket.destroy());
    client.socket.write(upgradeHead('/ws-partial'));
    await client.closed;
    t.match(client.text(), /^HTTP\/1\.1 502 /);
    t.match(client.text(), /x-meshcar-error: upstream_reset/i);
    t.match(client.text(), /after 26 bytes of its answer's head/, 'the bytes that came are told');
    t.notMatch(client.text(), /before answering the upgrade|maxConnectionsPerCaller/, 'no refusal unanswered is blamed');
  });

  t.test('no route → 404; wrong upstream identity → 502, on the raw socket', async (t) => {
    const nowhere = await rawClient(fx.port);
    nowhere.socket.write(upgradeHead('/ws', 'nowhere'));
    await nowhere.closed;
    t.match(nowhere.text(), /^HTTP\/1\.1 404 Not Found\r\n/);
    t.match(nowhere.text(), /x-meshcar-error: no_route/);
    t.match(nowhere.text(), /"error":"no_route"/);
    for (let i = 0; i < 300 && !fx.observer.requests.some((r) => r.errorCode === 'no_route'); i++) await sleep(10);
    const noRouteBody = nowhere.text().split('\r\n\r\n')[1] ?? '';
    t.match(fx.observer.requests.find((r) => r.errorCode === 'no_route'), { status: 404, bytesOut: noRouteBody.length }, "the record has the refusal's body bytes");

    const wrong = await rawClient(fx.port);
    wrong.socket.write(upgradeHead('/ws', 'impostor'));
    await wrong.closed;
    t.match(wrong.text(), /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    t.match(wrong.text(), /x-meshcar-error: upstream_identity_mismatch/);
    t.equal(impostor.seen.length, 0, 'the impostor never saw the request');
  });

  t.test("a tunnel closes after its upstream's tunnelIdleTimeout without a byte either way, not while bytes move", async (t) => {
    const client = await rawClient(fx.port);
    t.teardown(() => client.socket.destroy());
    client.socket.write(upgradeHead('/ws', 'quiet'));
    t.match(await client.waitFor(/\r\n\r\n/), /^HTTP\/1\.1 101 /);
    // busy for longer than the idle timeout, a message every 100 ms (a tenth of it, so a
    // loaded machine's late timer cannot pass for idleness): each message re-arms it
    for (let i = 0; i < 14; i++) {
      await new Promise((r) => setTimeout(r, 100));
      client.socket.write(`m${i};`);
      await client.waitFor(new RegExp(`echo:m${i};`));
    }
    const quietFrom = Date.now();
    await client.closed;
    const idleMs = Date.now() - quietFrom;
    t.ok(idleMs >= 500 && idleMs < 3_000, `closed ${idleMs} ms after the last byte (tunnelIdleTimeout 1000 ms)`);
    // both apps read a reset, as from a crashed peer: the sidecar's log says it was the limit
    const said = logLines.filter((l) => String(l.msg).startsWith('WebSocket tunnel cut: no bytes either way for 1s (tunnelIdleTimeout)'));
    t.equal(said.length, 1, 'one info line says the tunnel was cut for idleness');
    t.match(said[0], { level: 30, upstream: 'quiet', path: '/ws' }, 'naming the upstream and the path');
  });

  t.test('an idle tunnel is cut toward the upstream too: a reset, not a half-close its far end could sit on', async (t) => {
    const client = await rawClient(fx.port);
    t.teardown(() => client.socket.destroy());
    const before = upstream.quiet.length;
    client.socket.write(upgradeHead('/ws-quiet', 'quiet'));
    t.match(await client.waitFor(/\r\n\r\n/), /^HTTP\/1\.1 101 /);
    await client.closed;
    // a FIN would leave this far end (which stays after one) open until its own idle limit
    const far = upstream.quiet[before] as Promise<string[]>;
    const seen = await Promise.race([far, new Promise<string>((r) => setTimeout(r, 5_000, 'still open 5 s after the app side closed')).then((s) => [s])]);
    t.same(seen, ['ECONNRESET'], 'the upstream connection was reset, and so closed');
  });
});
