// Connections to the CA port that do nothing are closed, within the bounds the server is given
// (CA_CONNECTION_LIMITS by default; short ones here, so the waits take seconds): a TCP
// connection that never starts TLS at the handshake timeout; a TLS
// connection that sends no request, and headers dribbled a byte at a time, at the headers
// timeout (checked every second, not every 30 s); a client that pipelines requests and never
// reads the answers at the idle timeout (the server no longer holds its socket); and at
// maxConnections, the oldest connection with no request in flight at once, for the new one. Raw sockets against a real CA server in this
// process; every wait is bounded.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { startTestCa } from '../helpers/ca.js';
import { serverLetGoWithin } from '../helpers/connections.js';
import { startUnreadClient } from '../helpers/unread-client.js';
import { CA_CONNECTION_LIMITS, type CaConnectionLimits } from '../../src/ca/connection-limits.js';

/** The limits the server runs with here: the defaults' shape, at test scale. */
const limits: CaConnectionLimits = { ...CA_CONNECTION_LIMITS, handshakeTimeoutMs: 1_000, idleTimeoutMs: 1_500, headersTimeoutMs: 1_000, maxConnections: 20 };
/** For the client that never reads: its 600 pipelined /metrics requests all answered, on one connection. */
const unreadLimits: CaConnectionLimits = { ...limits, maxRequestsPerConnection: 1_000, probeRatePerSecond: 1_000, probeBurst: 1_000 };
/** How often the server checks the headers timeout (a 1 s timeout: at most every second). */
const CHECK_MS = 1_000;

/** Scheduling on a loaded 2-core machine, on top of each bound. */
const SLACK_MS = 3_000;

/** Resolves with the ms from `since` to the socket's close; rejects once `boundMs` have passed. */
function closedWithin(socket: net.Socket, since: number, boundMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(Date.now() - since);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open ${boundMs} ms after it went quiet`));
    }, boundMs - (Date.now() - since));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

async function connectTls(port: number): Promise<{ socket: tls.TLSSocket; at: number }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  return { socket, at: Date.now() };
}

t.test('silent, slow and surplus connections to the CA are closed within the stated bounds', async (t) => {
  const ca = await startTestCa({}, undefined, limits);
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const headersBound = limits.headersTimeoutMs + CHECK_MS + SLACK_MS;

  // handshaken, then nothing (reading whatever comes, as a well-behaved client would)
  const quiet = await connectTls(port);
  quiet.socket.resume();
  // handshaken, then the headers of a request one byte every 100 ms, never finished
  const slow = await connectTls(port);
  slow.socket.resume();
  const text = `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: ${'a'.repeat(200)}`;
  let sent = 0;
  const dribble = setInterval(() => {
    if (!slow.socket.destroyed) slow.socket.write(text[sent++ % text.length] as string);
  }, 100);
  t.teardown(() => clearInterval(dribble));

  // TCP only, never a ClientHello: up to the cap together with the two above
  const silent: net.Socket[] = [];
  for (let i = 0; i < limits.maxConnections - 2; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    silent.push(socket);
  }
  await Promise.all(silent.map((socket) => once(socket, 'connect')));
  const silentSince = Date.now();
  const surplus = net.connect(port, '127.0.0.1');
  surplus.on('error', () => undefined);
  await once(surplus, 'connect');

  // at the cap the oldest connection with no request in flight makes room: the quiet one
  const quietEvicted = await closedWithin(quiet.socket, Date.now(), SLACK_MS).catch((err: Error) => err);
  t.type(quietEvicted, 'number', `connection ${limits.maxConnections + 1} takes the place of the oldest idle one, closed at once: ${String(quietEvicted)}`);
  t.notOk(surplus.destroyed, 'the new one is kept');
  t.notOk(silent[0]?.destroyed, 'and the other idle ones, younger, stay open');
  t.match(await ca.metrics.render(), /^meshcar_ca_connections_refused_total\{reason="idle_evicted"\} 1$/m, 'counted as idle_evicted');
  t.teardown(() => surplus.destroy());

  const [silentAfter, quietAfter, slowAfter] = await Promise.all([
    Promise.all(silent.map((socket) => closedWithin(socket, silentSince, limits.handshakeTimeoutMs + SLACK_MS))).then((times) => Math.max(...times), (err: Error) => err),
    closedWithin(quiet.socket, quiet.at, headersBound).catch((err: Error) => err),
    closedWithin(slow.socket, slow.at, headersBound).catch((err: Error) => err),
  ]);
  t.type(silentAfter, 'number', `TCP connections that never start TLS: closed at the ${limits.handshakeTimeoutMs} ms handshake timeout (${String(silentAfter)})`);
  t.type(quietAfter, 'number', `a TLS connection with no request: closed (made room above, else at the ${limits.headersTimeoutMs} ms headers timeout) (${String(quietAfter)})`);
  t.type(slowAfter, 'number', `headers dribbled a byte at a time: cut at the ${limits.headersTimeoutMs} ms headers timeout (${String(slowAfter)})`);

  // the cap counts open connections only: once those are gone, the CA answers again
  const again = await connectTls(port);
  again.socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  const [answer] = (await once(again.socket, 'data')) as [Buffer];
  t.match(answer.toString(), /^HTTP\/1\.1 200 /, 'a new connection is served');
  again.socket.destroy();
});

t.test('a client that never reads its answers is let go at the idle timeout', async (t) => {
  const ca = await startTestCa({}, undefined, unreadLimits);
  t.teardown(() => ca.close());
  // pipelined requests for /metrics (~9 KB each), never read: the responses back up until
  // nothing moves either way, the last one ended by its handler but stuck in the buffers
  const since = Date.now();
  const unread = await startUnreadClient(ca.server.port, { tls: true, path: '/metrics', count: 600 });
  t.teardown(() => unread.stop());
  // rendering the answers takes seconds on a loaded machine before the idle clock starts
  const after = await serverLetGoWithin(ca.server.port, unread.localPort, since, limits.idleTimeoutMs + 4 * SLACK_MS);
  t.type(after, 'number', `the server no longer holds the connection (${String(after)})`);
  t.ok(typeof after === 'number' && after >= limits.idleTimeoutMs - 500, 'and only once it has been idle that long');
});
