// The app-facing listener's bookkeeping lets each request go once it is over (review-diff-s7):
// it noted every connection's latest request (for a body that breaks after its head was
// handed on) and never cleared it, so each idle keep-alive connection held its last request,
// and through it the request's forwarder, until the next request or the close. Checked on a
// real listener and real sockets: the request is collected (a WeakRef, after forced GCs) while
// its connection stays open, whether its body ended before the answer or after it.

import t from 'tap';
import net from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppListener } from '../../src/outbound/listener.js';
import { silent, sleep, waitUntil } from '../helpers/outbound-fixture.js';
import { collected } from '../helpers/collected.js';


t.test('an answered request is not held by its idle keep-alive connection', async (t) => {
  let last: WeakRef<IncomingMessage> | undefined;
  const listener = new AppListener(
    {
      // /early answers at once, before the body; anything else once the body has ended
      request: (req: IncomingMessage, res: ServerResponse) => {
        last = new WeakRef(req);
        req.resume();
        if (req.url === '/early') res.end('early');
        else req.on('end', () => res.end('done'));
      },
      upgrade: (_req, socket) => socket.destroy(),
      stream: (stream) => stream.close(),
      brokenBody: () => false,
    },
    { maxHeaderBytes: 16384, keepAliveTimeoutMs: 60_000, maxAppStreams: 1024, headersTimeoutMs: 10_000 },
    silent,
  );
  const bound = await listener.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => listener.destroyAll());
  const socket = net.connect(bound.port, '127.0.0.1');
  socket.on('error', () => {});
  t.teardown(() => socket.destroy());
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (received += c));
  await new Promise((resolve) => socket.once('connect', resolve));

  socket.write('POST /whole HTTP/1.1\r\nHost: orders\r\nContent-Length: 3\r\n\r\nabc');
  await waitUntil(() => received.endsWith('done'), 'the answer');
  t.ok(await collected(last as WeakRef<IncomingMessage>), 'a request whose body ended before its answer is let go');

  received = '';
  socket.write('POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 6\r\n\r\nabc');
  await waitUntil(() => received.endsWith('early'), 'the early answer');
  socket.write('def');
  // its body ends after the answer: then it is let go as well
  await sleep(50);
  t.ok(await collected(last as WeakRef<IncomingMessage>), 'a request answered before the end of its body is let go once it ends');
  t.notOk(socket.destroyed, 'the connection is still open');
  t.equal(listener.connections, 1, 'the listener still has it');
});
