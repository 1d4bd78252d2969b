// What one peer may hold of the inbound's connections. TLS handshakes in progress per remote
// address (before any certificate: anyone who reaches the port could hold a descriptor per TCP
// connection for the handshake timeout) and verified connections per caller SPIFFE ID (an idle
// HTTP/2 connection lived until its maximum age, 10 min: one caller opened 200 and kept all
// 200 descriptors, as many as it liked, until the process ran out). Over either cap the
// connection is closed as it comes, counted by reason; what a closed or finished connection
// held is given back. Handshakes in progress on the whole listener are capped too (many
// addresses, each within its cap, held ~60 KB per half-done handshake without bound): at that
// cap the oldest is closed, so a real caller's quick handshake still gets through. Real
// sockets, real mTLS, certificates from our CA, both codecs.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { FRONTEND_ID, startInbound, TD, type InboundFixture } from '../helpers/inbound-fixture.js';

const OTHER_ID = `spiffe://${TD}/svc/other`;

/** Resolves with whether `socket` was closed by the server within `ms`. */
function closedWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** A TCP connection that sends nothing: a handshake that never starts (from `from`, a loopback address). */
async function silent(port: number, open: net.Socket[], from = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
  socket.on('error', () => {});
  open.push(socket);
  await once(socket, 'connect');
  return socket;
}

/**
 * A verified caller's connection: resolves 'served' once the server speaks on it (HTTP/2: its
 * SETTINGS; HTTP/1.1: an answer to a request), 'closed' if it closes the connection first.
 */
async function callerConnection(fx: InboundFixture, id: string, alpn: 'h2' | 'http/1.1', open: net.Socket[]): Promise<{ socket: tls.TLSSocket; outcome: 'served' | 'closed' }> {
  const socket = tls.connect({ host: '127.0.0.1', port: fx.port, ALPNProtocols: [alpn], ...(await fx.tlsOptions(id)) });
  socket.on('error', () => {});
  open.push(socket);
  const outcome = await new Promise<'served' | 'closed'>((resolve) => {
    socket.once('secureConnect', () => {
      if (alpn === 'h2') socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
      else socket.write('GET /x HTTP/1.1\r\nhost: orders\r\n\r\n');
    });
    socket.once('data', () => resolve('served'));
    socket.once('close', () => resolve('closed'));
    setTimeout(() => resolve('closed'), 5000).unref();
  });
  return { socket, outcome };
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error(`not within 3 s: ${what}`);
}

t.test('TLS handshakes in progress per address are capped; a finished or closed one frees its place', async (t) => {
  const fx = await startInbound({ limits: { maxHandshakesPerAddress: 4, handshakeTimeoutMs: 20_000 } });
  const open: net.Socket[] = [];
  t.teardown(async () => {
    open.forEach((s) => s.destroy());
    await fx.close();
  });
  const first = await Promise.all([0, 1, 2, 3].map(() => silent(fx.port, open)));
  const over = await silent(fx.port, open);
  t.ok(await closedWithin(over, 2000), 'a fifth handshake from the address is closed at once, not at the 20 s handshake timeout');
  t.notOk(await closedWithin(first[0]!, 100), 'the four within the cap stay');
  t.equal((await callerConnection(fx, FRONTEND_ID, 'h2', open)).outcome, 'closed', 'a caller from the same address meanwhile is refused too (the cap is per address, before any certificate)');
  t.same([...new Set(fx.observer.connectionRefusals)], ['handshake_limit'], 'counted as handshake_limit');

  for (const s of first) s.destroy();
  await until(() => fx.observer.connectionRefusals.length >= 2, 'refusals counted');
  // the server sees the closes a moment later: a caller gets through once it has
  let served = false;
  for (let i = 0; i < 50 && !served; i++) served = (await callerConnection(fx, FRONTEND_ID, 'h2', open)).outcome === 'served';
  t.ok(served, 'closed handshakes give their places back');

  // finished handshakes no longer count: four verified connections, then four silent ones still fit
  const verified = await Promise.all([0, 1, 2].map(() => callerConnection(fx, FRONTEND_ID, 'h2', open)));
  t.same(verified.map((v) => v.outcome), ['served', 'served', 'served'], 'verified connections are served');
  const refusalsBefore = fx.observer.connectionRefusals.length;
  const more = await Promise.all([0, 1, 2, 3].map(() => silent(fx.port, open)));
  t.notOk(await closedWithin(more[3]!, 300), 'with four verified connections open, four handshakes still fit: only handshakes in progress count');
  t.equal(fx.observer.connectionRefusals.length, refusalsBefore, 'none refused');
});

t.test('TLS handshakes in progress on the listener are capped, all addresses together: the oldest is closed for a new one', async (t) => {
  const fx = await startInbound({ limits: { maxHandshakesPerAddress: 4, maxHandshakes: 6, handshakeTimeoutMs: 20_000 } });
  const open: net.Socket[] = [];
  t.teardown(async () => {
    open.forEach((s) => s.destroy());
    await fx.close();
  });
  // three addresses, each within its own cap of 4: twelve half-done handshakes without the listener's cap
  const stalled: net.Socket[] = [];
  for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) for (let i = 0; i < 4; i++) stalled.push(await silent(fx.port, open, from));
  await until(() => stalled.filter((s) => !s.destroyed).length <= 6, 'the listener keeps at most 6');
  t.same(stalled.map((s) => !s.destroyed), [false, false, false, false, false, false, true, true, true, true, true, true], 'the six oldest were closed, the six newest kept');
  t.same([...new Set(fx.observer.connectionRefusals)], ['handshake_total_limit'], 'counted as handshake_total_limit, not per address');

  // a caller among them still gets through: its handshake takes the place of the oldest stalled one
  const caller = await callerConnection(fx, FRONTEND_ID, 'h2', open);
  t.equal(caller.outcome, 'served', 'a verified caller arriving at the cap is served');
  t.ok(await closedWithin(stalled[6]!, 2000), 'the oldest stalled handshake made room for it');
  t.notOk(await closedWithin(stalled[11]!, 100), 'the newest stalled one is still held (until the handshake timeout)');
});

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`verified connections per caller identity are capped (${codec} codec)`, async (t) => {
    const fx = await startInbound({ codec, limits: { maxConnectionsPerCaller: 3 } });
    const open: net.Socket[] = [];
    t.teardown(async () => {
      open.forEach((s) => s.destroy());
      await fx.close();
    });
    const three = [];
    for (const alpn of ['h2', 'h2', 'http/1.1'] as const) three.push(await callerConnection(fx, FRONTEND_ID, alpn, open));
    t.same(three.map((c) => c.outcome), ['served', 'served', 'served'], 'three connections of the caller (HTTP/2 and HTTP/1.1) are served');
    t.equal((await callerConnection(fx, FRONTEND_ID, 'h2', open)).outcome, 'closed', 'a fourth HTTP/2 connection is closed before a request is read');
    t.equal((await callerConnection(fx, FRONTEND_ID, 'http/1.1', open)).outcome, 'closed', 'so is a fourth HTTP/1.1 one');
    t.same(fx.observer.connectionRefusals, ['caller_limit', 'caller_limit'], 'each counted as caller_limit');
    t.equal((await callerConnection(fx, OTHER_ID, 'h2', open)).outcome, 'served', 'another identity from the same address has a cap of its own');

    three[0]!.socket.destroy();
    await until(() => fx.inbound.connections === 3, 'the inbound saw the close');
    t.equal((await callerConnection(fx, FRONTEND_ID, 'h2', open)).outcome, 'served', 'a closed connection gives its place back');
  });
}
