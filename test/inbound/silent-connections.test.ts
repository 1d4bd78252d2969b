// A TCP connection to the inbound that never starts TLS (no ClientHello), or stops halfway, is
// closed at the handshake timeout. Node only reports the timeout (tlsClientError with
// ERR_TLS_HANDSHAKE_TIMEOUT) and leaves the socket open: anyone who can reach the inbound port
// could hold its file descriptors for ever without a certificate. Raw sockets, a real inbound.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { startInbound } from '../helpers/inbound-fixture.js';

const HANDSHAKE_TIMEOUT_MS = 400;

async function closedWithin(socket: net.Socket, ms: number): Promise<number | undefined> {
  const started = Date.now();
  const closed = once(socket, 'close').then(() => Date.now() - started);
  const late = new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref());
  return Promise.race([closed, late]);
}

t.test('connections that never finish a TLS handshake are closed at the handshake timeout', async (t) => {
  const fx = await startInbound({ limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } });
  t.teardown(() => fx.close());
  const silent = net.connect(fx.port, '127.0.0.1');
  const halfway = net.connect(fx.port, '127.0.0.1');
  for (const s of [silent, halfway]) s.on('error', () => {});
  t.teardown(() => {
    silent.destroy();
    halfway.destroy();
  });
  await Promise.all([once(silent, 'connect'), once(halfway, 'connect')]);
  // the first bytes of a TLS record header (handshake, TLS 1.0 record version), then nothing
  halfway.write(Buffer.from([0x16, 0x03, 0x01]));
  const [silentAfter, halfwayAfter] = await Promise.all([closedWithin(silent, 5000), closedWithin(halfway, 5000)]);
  t.type(silentAfter, 'number', `a connection that sends nothing is closed (${String(silentAfter)} ms)`);
  t.type(halfwayAfter, 'number', `one that stops in its ClientHello is closed (${String(halfwayAfter)} ms)`);
  t.ok((silentAfter ?? 0) >= HANDSHAKE_TIMEOUT_MS - 50, 'not before the timeout');
  // counted under their own reason, so a slowloris at the TLS layer shows on the dashboard
  // apart from the failures that are some other thing
  const failures = await fx.observer.waitForTlsFailures(2, 5000);
  t.same(failures.map((f) => `${f.direction}:${f.reason}`), ['inbound:handshake_timeout', 'inbound:handshake_timeout']);
});
