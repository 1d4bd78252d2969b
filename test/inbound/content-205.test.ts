// A 205 (Reset Content) from an HTTP/1.1 app with content, which RFC 9110 §15.3.6 forbids:
// unframed (read to the close) or short of its Content-Length, while the app keeps the
// connection open. The caller gets its 205 with no content at once; the app connection was
// left reading a body that never came, holding its pool slot until the app closed it, and with
// `maxAppSockets` held so, every later request waited for its 504. Now such a connection is
// dropped at the answer; a 205 with `Content-Length: 0` keeps its connection. The own client,
// the Expect path (node:http); app-client-undici-content-205.test.ts runs it on undici's pool.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/movable-clock.js';

const ANSWERS: Record<string, string> = {
  '/unframed': 'HTTP/1.1 205 Reset Content\r\n\r\n',
  '/short': 'HTTP/1.1 205 Reset Content\r\nContent-Length: 10\r\n\r\n',
  '/zero': 'HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n',
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
};

t.test('a 205 with content that never comes does not hold its app connection', async (t) => {
  const open = new Set<net.Socket>();
  let accepted = 0;
  // answers each request head as soon as it is in (a body, if any, is read as junk and dropped)
  const app = net.createServer((socket) => {
    accepted++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const path = buffered.slice(0, buffered.indexOf('\r\n')).split(' ')[1] as string;
        buffered = buffered.slice(end + 4);
        socket.write(ANSWERS[path] ?? ANSWERS['/ok']);
      }
      if (buffered.indexOf('\r\n') === -1) buffered = '';
    });
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const fx = await startInbound({ externalApp: { protocol: 'http', port: (app.address() as net.AddressInfo).port }, limits: { maxAppSockets: 2 }, timeoutMs: 3000 });
  t.teardown(async () => {
    await fx.close();
    for (const socket of open) socket.destroy();
    app.close();
  });
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => session.close());

  for (const path of ['/unframed', '/short']) {
    for (let i = 0; i < 3; i++) {
      const res = await h2Request(session, { ':method': 'GET', ':path': path });
      t.same([res.status, res.body.length], [205, 0], `${path} #${i + 1}: 205, no content`);
    }
    const expect = await h2Request(session, { ':method': 'POST', ':path': path, expect: '100-continue', 'content-length': '1' }, 'x');
    t.equal(expect.status, 205, `${path} with Expect (node:http): 205`);
    const started = Date.now();
    const ok = await h2Request(session, { ':method': 'GET', ':path': '/ok' });
    t.equal(ok.status, 200, `${path}: the next request is served (maxAppSockets is 2)`);
    t.ok(Date.now() - started < 1500, 'at once, not after a wait for a connection');
    t.ok(await waitFor(() => open.size <= 1, 3000), `${path}: the app connections are closed (${open.size} open)`);
  }
  const before = accepted;
  for (let i = 0; i < 3; i++) t.equal((await h2Request(session, { ':method': 'GET', ':path': '/zero' })).status, 205, `/zero #${i + 1}: 205`);
  t.equal(accepted - before, open.size === 0 ? 1 : 0, 'a 205 with Content-Length: 0 keeps its connection (at most one new)');
  const records = await fx.observer.waitForRequests(13);
  t.same(records.map((r) => r.status).filter((s) => s === 205).length, 11, 'each 205 recorded once');
});
