// An HTTP/1.1 caller that pipelines requests and never reads the answers. Node hands the inbound
// every request of a pipelined write at once: each went to the app and its answer was queued
// until the caller read the earlier ones, so one connection writing 20,000 GETs held them all
// (+105 MB RSS in a sidecar process, the app asked 20,000 times), past the HTTP/2 stream limit
// and the app pool. Beyond 32 requests in flight on one connection it is now closed, counted
// as pipelined; a caller pipelining a few requests gets every answer, in order. Real mTLS,
// certificates from our CA, both codecs (the bound is before either).

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startInbound } from '../helpers/inbound-fixture.js';

let asked = 0;
function answer(req: IncomingMessage, res: ServerResponse): void {
  asked++;
  req.resume();
  res.end(`answer ${req.url}`);
}

async function callerSocket(port: number, tlsOptions: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...tlsOptions });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  return socket;
}

const requests = (n: number) => Array.from({ length: n }, (_, i) => `GET /r${i} HTTP/1.1\r\nhost: orders\r\n\r\n`).join('');

t.test('a caller pipelining 2,000 requests without reading is cut off after the bound', async (t) => {
  asked = 0;
  const fx = await startInbound({ app: { protocol: 'http', handler: answer } });
  t.teardown(() => fx.close());
  const socket = await callerSocket(fx.port, await fx.tlsOptions());
  t.teardown(() => socket.destroy());
  socket.pause(); // never reads
  // not events.once: it rejects on the reset's 'error'
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(requests(2000));
  const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 5000).unref())]);
  t.equal(outcome, 'closed', 'the connection is closed');
  t.ok(asked <= 33, `the app was asked at most the bound's worth (${asked} of 2000)`);
  t.same(fx.observer.connectionRefusals, ['pipelined'], 'counted once, as pipelined');
});

t.test('a caller pipelining a few requests gets every answer, in order', async (t) => {
  asked = 0;
  const fx = await startInbound({ app: { protocol: 'http', handler: answer } });
  t.teardown(() => fx.close());
  const socket = await callerSocket(fx.port, await fx.tlsOptions());
  t.teardown(() => socket.destroy());
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.write(requests(20));
  for (let i = 0; i < 500 && (text.match(/answer \/r\d+/g) ?? []).length < 20; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(text.match(/answer \/r\d+/g), Array.from({ length: 20 }, (_, i) => `answer /r${i}`), '20 answers in order');
  t.same(fx.observer.connectionRefusals, [], 'nothing cut');
});
