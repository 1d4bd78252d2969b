// A Content-Length with leading zeros (RFC 9110 §8.6: 1*DIGIT; llhttp and nghttp2 take it) on
// either side of the pair: an HTTP/1.1 app's request with `Content-Length: 0000000000000005`
// went over HTTP/2 as it came, and the inbound's own codec refused a content-length of more
// than 15 characters, so the request was lost as 502 upstream_reset (blamed on the peer); an
// app's answer with such a length, relayed by the inbound as it came, was refused the same way
// by the outbound after the app had acted on the request. Raw TCP at both ends, a real
// outbound and inbound over mutual TLS, both HTTP/2 codecs.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { startPairToApp } from '../helpers/pair-to-app.js';
import { closer, rawTcpRequest } from '../helpers/raw-http.js';

const ZEROS = '0'.repeat(15);

/** A raw HTTP/1.1 app: records each request (head and Content-Length body), answers `ok` with a zero-padded length. */
async function startZeroPaddingApp(seen: string[]) {
  const server = net.createServer((socket) => {
    let buffered = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end; (end = buffered.indexOf('\r\n\r\n')) !== -1; ) {
        const head = buffered.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
        if (buffered.length < end + 4 + length) return;
        seen.push(`${head.split('\r\n')[0]} body=${buffered.slice(end + 4, end + 4 + length)}`);
        buffered = buffered.slice(end + 4 + length);
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${ZEROS}2\r\n\r\nok`);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: closer(server) };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: zero-padded Content-Length both ways through the pair`, async (t) => {
    const seen: string[] = [];
    const app = await startZeroPaddingApp(seen);
    const { outbound } = await startPairToApp(t, app.port, codec);
    t.teardown(() => app.close()); // after the pair's own

    const post = await rawTcpRequest(outbound.port, `POST /orders HTTP/1.1\r\nHost: orders\r\nContent-Length: ${ZEROS}5\r\n\r\nHELLO`);
    t.equal(post.status, 200, 'the request with a zero-padded length is answered');
    t.equal(post.body, 'ok', 'with the app’s answer, whose own length is zero-padded');
    t.same(seen, ['POST /orders HTTP/1.1 body=HELLO'], 'the app got the request once, its body whole');

    const get = await rawTcpRequest(outbound.port, 'GET /plain HTTP/1.1\r\nHost: orders\r\n\r\n');
    t.equal(get.status, 200, 'a plain request: the app’s zero-padded answer is relayed');
    t.equal(get.body, 'ok');
    t.equal(seen.length, 2, 'and the app saw it once (no retry behind a refused answer)');
  });
}
