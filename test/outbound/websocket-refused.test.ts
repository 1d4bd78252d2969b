// An upstream that does not switch protocols must not get a tunnel. The upstream here is a raw
// TLS peer with a certificate from our CA for the upstream's SPIFFE ID: it records every byte
// per connection and answers /ws with 101, anything else with 200 (Content-Length, or chunked)
// while keeping its connection open. On a 200 the outbound relays the answer to the app and
// closes both connections: the app's next bytes (a DELETE it would have liked to send past the
// outbound's routing and policy) never reach the upstream. The app's bytes sent right after its
// head wait for a 101.

import t, { type Test } from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { makePki, startOutbound, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { waitFor } from '../h2/fixtures/h2-helpers.js';

interface PeerConnection {
  data: string;
  closed: boolean;
  /** How the outbound ended it: 'end' (a FIN), or an error's code ('ECONNRESET': a reset). */
  ended?: string;
}

async function startRawUpstream(pki: Awaited<ReturnType<typeof makePki>>) {
  const leaf = await pki.issue(UPSTREAM_ID);
  const connections: PeerConnection[] = [];
  const server = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, ...MTLS_SERVER_OPTIONS, ALPNProtocols: ['http/1.1'] }, (socket) => {
    const conn: PeerConnection = { data: '', closed: false };
    connections.push(conn);
    let answered = false;
    socket.on('error', (err: NodeJS.ErrnoException) => (conn.ended ??= err.code));
    socket.on('end', () => (conn.ended ??= 'end'));
    socket.on('close', () => (conn.closed = true));
    socket.on('data', (chunk: Buffer) => {
      conn.data += chunk.toString('latin1');
      if (answered || !conn.data.includes('\r\n\r\n')) return;
      answered = true;
      const path = conn.data.split(' ')[1];
      if (path === '/ws') socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      else if (path === '/no-connection') socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nRAW');
      else if (path === '/other-protocol') socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nRAW');
      else if (path === '/no-upgrade') socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\nRAW');
      // obs-text (RFC 9110 §5.5): a byte above 0x7f in a field value, sent as that byte
      else if (path === '/obs-text-101') socket.write(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Name: caf\xe9\r\n\r\n', 'latin1'));
      else if (path === '/obs-text-403') socket.write(Buffer.from('HTTP/1.1 403 Forbidden\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\n\r\nno', 'latin1'));
      else if (path?.startsWith('/status-')) socket.write(`HTTP/1.1 ${path.slice(8)} Weird\r\nContent-Length: 5\r\n\r\nweird`);
      else if (path === '/hop-fields-101') socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade, x-hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: x-t\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
      else if (path === '/hop-fields') socket.write('HTTP/1.1 403 Forbidden\r\nConnection: close, x-hop-secret\r\nX-Hop-Secret: internal-token\r\nProxy-Connection: keep-alive\r\nX-Why: policy\r\nContent-Length: 2\r\n\r\nno');
      else if (path === '/chunked') socket.write('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nX-Why: policy\r\n\r\n5\r\nno ws\r\n0\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Plain: yes\r\n\r\nhello');
      // and the connection stays open, as a keep-alive server's would
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, connections };
}

/** `allowHalfOpen`: an app that keeps its side open after the outbound ends its own. */
async function appClient(port: number, allowHalfOpen = false) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen });
  await once(socket, 'connect');
  let text = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  return { socket, text: () => text, closed: () => closed };
}

/** An app that keeps its side of the connection open (half-open), once the outbound has ended its own. */
async function lingeringApp(port: number, bytes: string) {
  const app = await appClient(port, true);
  app.socket.write(bytes);
  await once(app.socket, 'end');
  return app;
}

const upgrade = (path: string, host = 'payments') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
const SMUGGLED = 'DELETE /admin HTTP/1.1\r\nHost: payments\r\n\r\n';

/** A raw upstream (its answers scripted per test) behind an outbound named `payments`; both closed at teardown. */
async function rawUpstreamBehindOutbound(t: Test) {
  const pki = await makePki(TD);
  const upstream = await startRawUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    upstream.server.close();
  });
  return { upstream, fx };
}

t.test('WebSocket upgrade answered without 101', async (t) => {
  const { upstream, fx } = await rawUpstreamBehindOutbound(t);

  t.test('200 kept open: the answer is relayed, both connections close, the app’s next bytes go nowhere', async (t) => {
    const app = await appClient(fx.port);
    t.teardown(() => app.socket.destroy());
    app.socket.write(upgrade('/plain') + 'EARLY');
    await waitFor(() => app.text().includes('hello'), 'the answer at the app');
    app.socket.write(SMUGGLED);
    const conn = upstream.connections[0]!;
    await waitFor(() => (conn.closed && app.closed()) || conn.data.includes('DELETE'), 'both connections closed');
    t.notMatch(conn.data, /DELETE|EARLY/, 'the upstream saw nothing after the upgrade head');
    t.equal(conn.data.split('\r\n\r\n')[1], '', 'only the head');
    t.match(app.text(), /^HTTP\/1\.1 200 OK\r\n/);
    t.match(app.text(), /\r\nX-Plain: yes\r\n/);
    t.match(app.text(), /\r\nconnection: close\r\n\r\nhello$/, 'the body, then the end');
    const record = (await fx.observer.waitForRequests(1)).at(-1);
    t.match(record, { peer: 'payments', status: 200, method: 'GET', path: '/plain' });
  });

  t.test('a chunked refusal is relayed whole (its body until the close)', async (t) => {
    const app = await appClient(fx.port);
    t.teardown(() => app.socket.destroy());
    app.socket.write(upgrade('/chunked'));
    await waitFor(() => app.closed(), 'the app connection closed');
    t.match(app.text(), /^HTTP\/1\.1 403 Forbidden\r\n/);
    t.notMatch(app.text(), /transfer-encoding/i, 'no chunked framing kept');
    t.match(app.text(), /\r\nX-Why: policy\r\nconnection: close\r\n\r\nno ws$/);
    const conn = upstream.connections[1]!;
    await waitFor(() => conn.closed, 'the upstream connection closed');
  });

  t.test('101: the bytes the app sent after its head follow the handshake', async (t) => {
    const app = await appClient(fx.port);
    t.teardown(() => app.socket.destroy());
    app.socket.write(upgrade('/ws') + 'EARLY');
    await waitFor(() => app.text().includes('\r\n\r\n'), 'the 101 at the app');
    t.match(app.text(), /^HTTP\/1\.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n$/);
    const conn = upstream.connections[2]!;
    await waitFor(() => conn.data.endsWith('\r\n\r\nEARLY'), 'the early bytes at the upstream, after the head');
    app.socket.write('more');
    await waitFor(() => conn.data.endsWith('EARLYmore'), 'and the tunnel carries on');
    t.pass('tunnelled');
  });

  t.test('a refusal, then an app that keeps its side open: the outbound lets go of the connection and of the drain', async (t) => {
    const apps = [];
    for (const [label, bytes, status] of [
      ['our own refusal', upgrade('/ws', 'nowhere'), /^HTTP\/1\.1 404 /],
      ["the upstream's, relayed", upgrade('/plain'), /^HTTP\/1\.1 200 /],
    ] as const) {
      const app = await lingeringApp(fx.port, bytes);
      t.teardown(() => app.socket.destroy());
      t.match(app.text(), status, `${label}: answered, then the outbound's FIN`);
      // once the outbound has closed its socket, bytes sent to it are answered with a reset
      // (seen by the next write); a half-open socket would take (and drop) them for ever
      await waitFor(() => app.closed() || (app.socket.write('anyone there?'), false), `${label}: the connection closed`);
      apps.push(app);
    }
    const lingering = await lingeringApp(fx.port, upgrade('/ws', 'nowhere'));
    t.teardown(() => lingering.socket.destroy());
    t.equal(fx.outbound.inFlight, 0, 'a refused Upgrade is no longer in flight once its answer is out');
    const started = Date.now();
    await fx.outbound.drain(10_000);
    t.ok(Date.now() - started < 2_000, `drain did not wait for the app's open side (${Date.now() - started} ms)`);
  });
});

t.test('a 101 without an Upgrade field is no switch: 502 bad_gateway, never relayed as a 101', async (t) => {
  // review of tunnels M3: node:http reads it as a plain answer, which was relayed: the app read
  // "101 Switching Protocols" on a connection that then closed, and the record said 101
  const { upstream, fx } = await rawUpstreamBehindOutbound(t);
  const app = await appClient(fx.port);
  t.teardown(() => app.socket.destroy());
  app.socket.write(upgrade('/no-upgrade'));
  await waitFor(() => app.closed(), 'the app connection closed');
  t.match(app.text(), /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  t.match(app.text(), /\r\nx-meshcar-error: bad_gateway\r\n/);
  t.match(app.text(), /without an Upgrade field/);
  t.notMatch(app.text(), /RAW/, 'nothing of what followed');
  const record = (await fx.observer.waitForRequests(1)).at(-1);
  t.match(record, { peer: 'payments', status: 502, errorCode: 'bad_gateway' });
  await waitFor(() => upstream.connections[0]?.closed === true, 'the upstream connection closed');
  // the upstream may take itself as switched: its connection is reset, as for any refused 101,
  // so a tunnel it opened reads an abort, not a clean end of its stream
  t.equal(upstream.connections[0]?.ended, 'ECONNRESET', 'the upstream connection was reset, not ended');
});

t.test("a field value's bytes above 0x7f reach the app as they came, in a 101 and in a refusal", async (t) => {
  // the head was written as UTF-8 from node:http's latin1 reading: 0xe9 reached the app as
  // 0xc3 0xa9, another value than the upstream sent
  const { fx } = await rawUpstreamBehindOutbound(t);
  for (const [path, status] of [['/obs-text-101', '101 Switching Protocols'], ['/obs-text-403', '403 Forbidden']] as const) {
    const app = await appClient(fx.port);
    t.teardown(() => app.socket.destroy());
    app.socket.write(upgrade(path));
    await waitFor(() => app.text().includes('\r\n\r\n'), `${path}: the answer at the app`);
    t.match(app.text(), new RegExp(`^HTTP/1\\.1 ${status}\r\n`));
    t.match(app.text(), /\r\nX-Name: caf\xe9\r\n/, `${path}: the byte 0xe9 as it came`);
  }
});

t.test('a 101 with Upgrade but without `upgrade` in Connection is no switch either, and the message says which field it lacks', async (t) => {
  // it said "without an Upgrade field", which sent whoever read it looking at the wrong field
  const { upstream, fx } = await rawUpstreamBehindOutbound(t);
  const app = await appClient(fx.port);
  t.teardown(() => app.socket.destroy());
  app.socket.write(upgrade('/no-connection'));
  await waitFor(() => app.closed(), 'the app connection closed');
  t.match(app.text(), /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  t.match(app.text(), /answered 101 Switching Protocols without `upgrade` in its Connection field/);
  t.notMatch(app.text(), /RAW/, 'nothing of what followed');
  await waitFor(() => upstream.connections[0]?.closed === true, 'the upstream connection closed');
  t.equal(upstream.connections[0]?.ended, 'ECONNRESET', 'the upstream connection was reset, not ended');
});

t.test('a refusal with a status outside 200-599 is a 502, never relayed: the app read "HTTP/1.1 99 Weird"', async (t) => {
  const { fx } = await rawUpstreamBehindOutbound(t);
  for (const status of ['000', '099', '600', '999']) {
    const app = await appClient(fx.port);
    t.teardown(() => app.socket.destroy());
    app.socket.write(upgrade(`/status-${status}`));
    await waitFor(() => app.closed(), `${status}: the app connection closed`);
    t.match(app.text(), /^HTTP\/1\.1 502 Bad Gateway\r\n/, `${status}: 502`);
    t.match(app.text(), new RegExp(`answered the upgrade with status ${Number(status)}, not 101 nor 200-599`));
    t.notMatch(app.text(), /weird/, `${status}: nothing of its body`);
  }
  const records = await fx.observer.waitForRequests(4);
  t.same(records.map((r) => r.status), [502, 502, 502, 502], 'recorded as 502');
});

t.test("a refusal's connection-scoped fields stay on the upstream's connection", async (t) => {
  // the fields its Connection named, and Proxy-Connection, reached the app (RFC 9110 §7.6.1)
  const { fx } = await rawUpstreamBehindOutbound(t);
  const app = await appClient(fx.port);
  t.teardown(() => app.socket.destroy());
  app.socket.write(upgrade('/hop-fields'));
  await waitFor(() => app.closed(), 'the app connection closed');
  t.match(app.text(), /^HTTP\/1\.1 403 Forbidden\r\n/);
  t.notMatch(app.text(), /x-hop-secret|internal-token/i, 'a field its Connection named is left out');
  t.notMatch(app.text(), /proxy-connection/i, 'so is Proxy-Connection');
  t.match(app.text(), /\r\nX-Why: policy\r\n/, 'the rest goes on');
  t.match(app.text(), /\r\nconnection: close\r\n\r\nno$/);
});

t.test("a 101's connection-scoped fields stay on the upstream's connection; the switch's own go on", async (t) => {
  // it was copied byte for byte: the fields its Connection named, Keep-Alive, TE, Trailer...
  const { fx } = await rawUpstreamBehindOutbound(t);
  const app = await appClient(fx.port);
  t.teardown(() => app.socket.destroy());
  app.socket.write(upgrade('/hop-fields-101'));
  await waitFor(() => app.text().includes('\r\n\r\n'), 'the 101 relayed');
  const head = app.text().slice(0, app.text().indexOf('\r\n\r\n'));
  t.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  t.notMatch(head, /x-hop|secret|keep-alive|proxy-connection|\r\nte:|trailer/i, 'none of the hop-by-hop fields, nor the one its Connection named');
  t.match(head, /\r\nConnection: Upgrade(\r\n|$)/, 'Connection: Upgrade');
  t.match(head, /\r\nUpgrade: websocket(\r\n|$)/, 'Upgrade');
  t.match(head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/, "the protocol's own field");
});

t.test('a 101 switching to a protocol the app did not offer is no tunnel: 502 bad_gateway', async (t) => {
  // RFC 9110 §7.8; review of tunnels: a WebSocket request answered Upgrade: h2c opened an h2c
  // tunnel, which both sidecars refuse to offer (later requests would pass the policy)
  const { upstream, fx } = await rawUpstreamBehindOutbound(t);
  const app = await appClient(fx.port);
  t.teardown(() => app.socket.destroy());
  app.socket.write(upgrade('/other-protocol'));
  await waitFor(() => app.closed(), 'the app connection closed');
  t.match(app.text(), /^HTTP\/1\.1 502 Bad Gateway\r\n/);
  t.match(app.text(), /answered 101 switching to h2c, which the request did not offer/);
  t.notMatch(app.text(), /RAW/, 'nothing of what followed');
  await waitFor(() => upstream.connections[0]?.closed === true, 'the upstream connection closed');
});
