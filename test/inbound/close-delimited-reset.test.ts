// An HTTP/1.1 app's answer framed by the close (no Content-Length, not chunked; also any
// HTTP/1.0 answer without a length) ends with the app's FIN: a TCP reset in its place is a
// body cut short (the app crashed, or was killed, mid-answer), and the caller must see a cut
// (its HTTP/2 stream reset, the exchange recorded as `reset`), never the bytes so far as the
// whole answer. undici's pool took the reset for the end (a workaround of its for Mac OS) and
// the caller got a short body as a complete 200; the own client and node:http did not. A raw
// TCP app resets once the caller holds the first bytes; a FIN there still completes the answer.
// app-client-undici-close-delimited-reset.test.ts runs it on undici's pool.

import t from 'tap';
import type net from 'node:net';
import { inboundBeforeHttpApp } from '../helpers/inbound-fixture.js';
import { startRawApp } from '../helpers/raw-http.js';

const HEADS: Record<string, string> = {
  '/http11': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial',
  '/http10': 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npartial',
};

t.test('an answer framed by the close, cut by a reset, is cut for the caller too', async (t) => {
  const open = new Map<string, net.Socket>();
  const app = await startRawApp(({ line }, socket) => {
    const path = line.split(' ')[1] as string;
    open.set(path, socket);
    socket.write(HEADS[path.replace(/-(reset|fin)$/, '')] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  const { fx, session } = await inboundBeforeHttpApp(t, app);

  /** One request; once its first body bytes are in, the app resets (or ends) its connection. */
  const cutAfterFirstBytes = (path: string, how: 'reset' | 'fin') =>
    new Promise<{ body: string; rstCode: number }>((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': path });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('error', () => {});
      stream.on('data', (chunk: string) => {
        const first = body === '';
        body += chunk;
        if (!first) return;
        const socket = open.get(path);
        if (how === 'reset') socket?.resetAndDestroy();
        else socket?.end();
      });
      stream.on('close', () => resolve({ body, rstCode: stream.rstCode ?? 0 }));
    });

  for (const version of ['http11', 'http10']) {
    const reset = await cutAfterFirstBytes(`/${version}-reset`, 'reset');
    t.not(reset.rstCode, 0, `${version}: the caller's stream is reset (code ${reset.rstCode}), not ended as if whole`);
    const fin = await cutAfterFirstBytes(`/${version}-fin`, 'fin');
    t.same(fin, { body: 'partial', rstCode: 0 }, `${version}: the app's FIN ends the answer, whole`);
  }
  const records = await fx.observer.waitForRequests(4);
  t.same(
    records.map((r) => [r.path, r.status, r.errorCode ?? null]).sort(),
    [
      ['/http10-fin', 200, null],
      ['/http10-reset', 200, 'reset'],
      ['/http11-fin', 200, null],
      ['/http11-reset', 200, 'reset'],
    ],
    'the reset answers are recorded as cut, the ended ones as complete',
  );
});
