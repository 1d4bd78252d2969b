// Header strings leave our codec as raw literals, never Huffman-coded, in both roles (the
// outbound's sessions are clients, the inbound's servers): on the sidecar hop the bytes Huffman
// saves (a quarter of a string) cost CPU on both sides, ~13 µs a request for an 800-character
// bearer token (encode + decode, test/h2 bench in the commit), as HAProxy's encoder never
// Huffman-codes either. Seen on the wire by raw peers over mutual TLS: a value sent raw appears
// verbatim in the HEADERS frame's block.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { FLAG, FRAME, frame, readClientFrames, requestHeaders, type Frame } from '../helpers/raw-h2.js';
import { connectOurClient, rawClientOf, readBody, startOurServer, tlsPair } from './fixtures/h2-helpers.js';

// strings Huffman would shorten (lower-case hex and base64url: 5-6 bits a character)
const TOKEN = 'Bearer ' + 'eyJhbGciOiJFUzI1NiJ9.' + 'abcdefghijklmnopqrstuvwxyz0123456789_-'.repeat(20);
const REQUEST_ID = '3f2b9c1e-7a4d-4e8b-9c0f-5d6e7f8a9b0c';

t.test('server role: a response head\'s strings are raw literals', async (t) => {
  const server = await startOurServer((stream) => {
    stream.respond({ ':status': 200, 'x-token': TOKEN, 'x-request-id': REQUEST_ID });
    stream.end('ok');
  }, { tls: true });
  t.teardown(() => server.close());
  const raw = await rawClientOf(t, server.port);
  raw.write(requestHeaders(1, [[':method', 'GET'], [':scheme', 'https'], [':authority', 'localhost'], [':path', '/']]));
  const head = await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1, 'the response HEADERS');
  t.ok(head.payload.includes(Buffer.from(TOKEN, 'latin1')), 'the token verbatim');
  t.ok(head.payload.includes(Buffer.from(REQUEST_ID, 'latin1')), 'the request id verbatim');
});

t.test('client role: a request head\'s strings are raw literals, and the answer still reads', async (t) => {
  const m = await tlsPair();
  const blocks: Buffer[] = [];
  const server = tls.createServer({ ...m.server, ALPNProtocols: ['h2'] }, (socket) => {
    socket.on('error', () => {});
    socket.write(frame(FRAME.SETTINGS, 0, 0));
    readClientFrames(socket, (f: Frame) => {
      if (f.type !== FRAME.HEADERS) return;
      blocks.push(Buffer.from(f.payload));
      // :status 200 (static index 8), then an empty DATA that ends the stream
      socket.write(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS, f.streamId, Buffer.from([0x88])), frame(FRAME.DATA, FLAG.END_STREAM, f.streamId)]));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const conn = await connectOurClient((server.address() as AddressInfo).port, { tls: true });
  t.teardown(() => conn.destroy());
  const stream = conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'orders', ':path': '/orders/42', authorization: TOKEN, 'x-request-id': REQUEST_ID }, { endStream: true });
  const [head] = (await once(stream, 'response')) as [Record<string, unknown>];
  t.equal(String(head[':status']), '200');
  await readBody(stream);
  t.equal(blocks.length, 1, 'one request head');
  const block = blocks[0] as Buffer;
  t.ok(block.includes(Buffer.from(TOKEN, 'latin1')), 'the bearer token verbatim');
  t.ok(block.includes(Buffer.from(REQUEST_ID, 'latin1')), 'the request id verbatim');
  t.ok(block.includes(Buffer.from('/orders/42', 'latin1')), 'the path verbatim');
});
