// gracefulCloser (src/http/graceful-close.ts) tracks the responses still to come so a close can
// wait for them. Node never emits 'close' on a pipelined response still queued when its
// connection closes: each was kept for good, and one client of the admin port or the CA (a
// request answered with Connection: close, then more behind it on the same connection, over and
// over) grew the heap by gigabytes (a review). Real server, raw sockets.

import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { gracefulCloser } from '../../src/http/graceful-close.js';

t.test('responses queued behind a connection that closes are forgotten with it', async (t) => {
  let answer: (() => void) | undefined;
  const server = http.createServer((req, res) => {
    // held until the test answers it
    if (req.url === '/slow') return void (answer = () => res.end('late'));
    // the first answer closes the connection, as the admin's and the CA's 400s do
    if (req.url === '/close') res.setHeader('connection', 'close');
    res.end('ok');
  });
  const close = gracefulCloser(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => close(100));
  const port = (server.address() as AddressInfo).port;
  const pipelined = 'GET /close HTTP/1.1\r\nHost: x\r\n\r\n' + 'GET /next HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3);
  for (let round = 0; round < 20; round++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(pipelined);
    socket.resume();
    await once(socket, 'close');
  }
  // the server's side of the last connection closes a moment after the client sees it
  for (let i = 0; i < 100 && close.tracked() > 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(close.tracked(), 0, 'nothing tracked once every connection is gone (20 connections, 3 queued answers each)');

  // a request in progress is still tracked until its answer, and the close waits for it
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  for (let i = 0; i < 100 && answer === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(close.tracked(), 1, 'the request in progress is tracked');
  const closed = close(5000);
  answer?.();
  await closed;
  if (!socket.closed) await once(socket, 'close');
  t.match(text, /^HTTP\/1\.1 200 [\s\S]*late$/, 'and the close waited for its answer');
});
