// An HTTP/1.1 caller's chunked body that breaks while its request is in flight (a chunk size
// that is not hex, a trailer Node's parser refuses) is told to its exchange, as the outbound
// tells its forwarder: the app's request is cancelled and the caller gets 400 bad_request naming
// the parser's error, then the connection closes. Node tells the request nothing, so it waited
// for the app, which waited for the body's end: no answer until the idle timeout (5 min).

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startInbound } from '../helpers/inbound-fixture.js';
import { watchedTlsSocket } from '../helpers/raw-http.js';

/** Polls `ready` every 5 ms for at most `ms`; false if it never held. */
async function within(ms: number, ready: () => boolean): Promise<boolean> {
  for (let i = 0; i < ms / 5 && !ready(); i++) await new Promise((r) => setTimeout(r, 5));
  return ready();
}

t.test("a caller's chunked body broken mid-way: 400, the app's request cancelled, the connection closed", async (t) => {
  const appSaw: string[] = [];
  const app = (req: IncomingMessage, res: ServerResponse) => {
    // reads the whole body before it answers: it waits for an end that never comes
    req.on('data', (c: Buffer) => appSaw.push(`data ${c.length}`));
    req.on('end', () => res.end('whole'));
    req.on('close', () => appSaw.push(req.complete ? 'complete' : 'aborted'));
  };
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, idleTimeoutMs: 60_000 });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  for (const [what, broken] of [
    ['a chunk size that is not hex', 'zz\r\n'],
    ['a trailer Content-Length', '0\r\ncontent-length: 5\r\n\r\n'],
  ] as const) {
    appSaw.length = 0;
    const { socket, text: received, closed } = watchedTlsSocket(fx.port, tlsOptions);
    socket.on('secureConnect', () => socket.write('POST /upload HTTP/1.1\r\nhost: orders\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'));
    t.ok(await within(5_000, () => appSaw.includes('data 5')), `${what}: the app has the first chunk`);
    socket.write(broken);
    t.ok(await within(5_000, closed), `${what}: the connection closed at once, not at the idle timeout`);
    const text = received();
    t.match(text, /^HTTP\/1\.1 400 /, `${what}: 400`);
    t.match(text, /\r\nconnection: close\r\n/i, 'Connection: close');
    t.match(text, /\r\n\r\n\{"error":"bad_request","message":"[^"]*HPE_[A-Z_]+/, "bad_request naming the parser's error");
    t.ok(await within(3_000, () => appSaw.includes('aborted')), `${what}: the app's request cancelled (${appSaw.join(', ')})`);
  }
  const records = await fx.observer.waitForRequests(2);
  t.same(records.map((r) => [r.status, r.errorCode]), [[400, 'bad_request'], [400, 'bad_request']], 'recorded as 400 bad_request');
});
