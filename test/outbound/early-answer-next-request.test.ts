// An upload still coming when meshcar's inbound has answered it early (413 without reading)
// and reset its stream: the outbound reads and drops the rest as soon as the stream closes,
// so the caller's next request on the same keep-alive connection is answered at once. It was
// read only at the upload watch's next check, a second after the answer: the caller's next
// request waited ~1 s (a review of app answer shapes). Both codecs.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';
import { sleep, startOutbound } from '../helpers/outbound-fixture.js';
import { parseResponse } from '../helpers/raw-http.js';

const BODY = 1024 * 1024;
const FIRST = 256 * 1024;

async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: the next request after an early answer is not held back`, async (t) => {
    const peer = await startInbound({
      codec,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          req.on('error', () => {});
          if (req.url === '/early') return void res.writeHead(413, { 'content-length': '5' }).end('early');
          req.resume();
          req.on('end', () => res.end('done'));
        },
      },
    });
    t.teardown(() => peer.close());
    const fx = await startOutbound(peer.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${peer.port}`], identity: SERVER_ID }], { codec });
    t.teardown(() => fx.close());
    const socket = net.connect(fx.port, '127.0.0.1');
    socket.on('error', () => {});
    t.teardown(() => socket.destroy());
    await once(socket, 'connect');
    let received = Buffer.alloc(0);
    socket.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));

    socket.write(`POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: ${BODY}\r\n\r\n`);
    socket.write(Buffer.alloc(FIRST, 97));
    await until(() => parseResponse(received, false) !== undefined, 'the early answer', 5000);
    t.equal(parseResponse(received, false)?.status, 413, 'answered early');
    const answered = performance.now();
    // the rest of the upload, then the next request on the same connection
    socket.write(Buffer.alloc(BODY - FIRST, 97));
    socket.write('GET /next HTTP/1.1\r\nHost: orders\r\n\r\n');
    await until(() => /200 OK[\s\S]*done$/.test(received.toString('latin1')), 'the next answer', 5000);
    const ms = performance.now() - answered;
    t.ok(ms < 600, `the next request answered ${ms.toFixed(0)} ms after the early answer (under 600: the rest of the upload read at once)`);
  });
}
