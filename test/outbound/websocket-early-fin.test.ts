// A tunnel carries half-closes, also one that comes before the 101: an app that sends its
// Upgrade head (and bytes of the new protocol after it) and then its FIN still reads the 101
// and what the far app sends after it, and the far app gets those bytes, then the FIN. Node's
// close-on-FIN closed the connection at once on both sidecars (a review): the calling app read
// no 101 and nothing after it, the far app's tunnel opened and broke (EPIPE), the record 499.
// A refusal still closes the connection after it. Through a real pair (outbound -> mTLS ->
// inbound -> raw TCP far app) and against the inbound alone (a raw mTLS caller), both codecs.

import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { startTunnelPair, UPGRADE_HEAD, SWITCHING, endings, closedWithin, type FarApp } from '../helpers/tunnel-pair.js';
import { waitUntil } from '../helpers/outbound-fixture.js';

const FAR_BYTES = 'hello-from-far';
const EARLY_BYTES = 'early-bytes';

/** A far app that switches, then sends FAR_BYTES; what it read after the head, and how its side ended. */
function farApp(): { far: FarApp; read: () => string; ended: () => boolean } {
  let read = '';
  let ended = false;
  const far: FarApp = (socket, _head, rest) => {
    read += rest.toString('latin1');
    socket.on('data', (chunk: Buffer) => (read += chunk.toString('latin1')));
    socket.on('end', () => {
      ended = true;
      socket.end(); // its own side ends after the caller's, as a WebSocket server's close does
    });
    socket.write(SWITCHING);
    socket.write(FAR_BYTES);
    socket.resume();
  };
  return { far, read: () => read, ended: () => ended };
}

/** Collects what a socket reads, as text. */
function reader(socket: net.Socket): () => string {
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  return () => text;
}

// with bytes after the head, the FIN waits behind them; without, it is read at once
for (const [codec, early] of [['meshcar', EARLY_BYTES], ['meshcar', ''], ['node', EARLY_BYTES], ['node', '']] as const) {
  const what = early ? 'with bytes after the head' : 'right behind the head';
  t.test(`${codec} codec: an app's FIN before the 101 (${what}) goes on after it`, async (t) => {
    const far = farApp();
    const pair = await startTunnelPair(far.far, { codec });
    t.teardown(() => pair.close());
    const app = net.connect({ port: pair.outbound.port, host: '127.0.0.1', allowHalfOpen: true });
    await once(app, 'connect');
    const seen = endings(app);
    const text = reader(app);
    // the head, bytes of the new protocol, and the FIN, all before the far app has the head
    app.end(UPGRADE_HEAD + early);
    await waitUntil(() => text().includes(FAR_BYTES) || seen.events.length > 0, 'the far bytes, or an ending');
    t.match(text(), /^HTTP\/1\.1 101 Switching Protocols\r\n[^]*\r\n\r\nhello-from-far$/, 'the app reads the 101 and the far bytes after its FIN');
    await waitUntil(() => far.ended(), "the far app's FIN");
    t.equal(far.read(), early, 'the far app got the bytes sent after the head, then the FIN');
    t.same(await closedWithin(seen, 5_000), ['end', 'close'], "the far app's end reaches the app, and the tunnel closes");
    await waitUntil(() => pair.outbound.observer.requests.length > 0 && pair.inbound.observer.requests.length > 0, 'both records');
    t.same(
      [pair.outbound.observer.requests.map((r) => r.status), pair.inbound.observer.requests.map((r) => r.status)],
      [[101], [101]],
      'recorded as a switch on both sidecars',
    );
  });

  t.test(`${codec} codec: a caller's FIN before the app's 101 (${what}), at the inbound`, async (t) => {
    const far = farApp();
    const pair = await startTunnelPair(far.far, { codec });
    t.teardown(() => pair.close());
    const caller = tls.connect({ ...(await pair.inbound.tlsOptions()), host: '127.0.0.1', port: pair.inbound.port, ALPNProtocols: ['http/1.1'], allowHalfOpen: true });
    caller.on('error', () => {});
    await once(caller, 'secureConnect');
    const seen = endings(caller);
    const text = reader(caller);
    caller.end(UPGRADE_HEAD + early);
    await waitUntil(() => text().includes(FAR_BYTES) || seen.events.length > 0, 'the far bytes, or an ending');
    t.match(text(), /^HTTP\/1\.1 101 Switching Protocols\r\n[^]*\r\n\r\nhello-from-far$/, 'the caller reads the 101 and the far bytes after its FIN');
    await waitUntil(() => far.ended(), "the far app's FIN");
    t.equal(far.read(), early, 'the far app got the bytes sent after the head, then the FIN');
    t.same(pair.inbound.observer.requests.map((r) => r.status), [101], 'recorded as a switch');
  });
}

t.test("an app's FIN before a refusal: the refusal, then the connection closes", async (t) => {
  const pair = await startTunnelPair((socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno');
  });
  t.teardown(() => pair.close());
  const app = net.connect({ port: pair.outbound.port, host: '127.0.0.1', allowHalfOpen: true });
  await once(app, 'connect');
  const seen = endings(app);
  const text = reader(app);
  app.end(UPGRADE_HEAD + EARLY_BYTES);
  t.same(await closedWithin(seen, 5_000), ['end', 'close'], 'the connection closes after the answer, not held half-open');
  t.match(text(), /^HTTP\/1\.1 403 Forbidden\r\n[^]*\r\n\r\nno$/, 'the refusal is relayed');
});
