// Answers that have no body (RFC 9110 §6.4.1: the answer to HEAD, 204, 205, 304): our server
// stream ends with the head, as Node's respond() does, and a body written after it never
// reaches the peer (a write after end, an 'error' on the stream, as on Node's codec). Found
// by review 28: every error the inbound made for a HEAD request (403, 429, 503, 504, a schema
// refusal) went out as HEADERS + DATA, which Node's client and ours refuse as a content-length
// mismatch (RST_STREAM PROTOCOL_ERROR) and curl -I through the pair saw as an empty reply.
// The peer here is Node's core http2 client over h2c, a client we did not write.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import { startOurServer } from './fixtures/h2-helpers.js';

const JSON_BODY = '{"error":"upstream_unavailable"}';

interface Seen {
  status: number | undefined;
  dataBytes: number;
  rstCode: number | undefined;
  streamError: string | undefined;
}

function request(session: http2.ClientHttp2Session, method: string, path: string): Promise<Seen> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': method, ':path': path }, { endStream: true });
    const seen: Seen = { status: undefined, dataBytes: 0, rstCode: undefined, streamError: undefined };
    req.on('response', (h) => (seen.status = Number(h[':status'])));
    req.on('data', (d: Buffer) => (seen.dataBytes += d.length));
    req.on('error', (e: Error) => (seen.streamError = e.message));
    req.on('close', () => {
      seen.rstCode = req.rstCode;
      resolve(seen);
    });
  });
}

t.test('HEAD, 204, 205 and 304 answers end with their head; a body written anyway never leaves', async (t) => {
  const writeErrors: string[] = [];
  const server = await startOurServer((stream, headers) => {
    stream.on('error', (e: NodeJS.ErrnoException) => writeErrors.push(String(e.code)));
    const path = String(headers[':path']);
    // what an error answer does: a head announcing the JSON, then the JSON (204 and 205 may
    // announce no length: nghttp2 refuses one, as RFC 9110 §8.6 forbids it on 204)
    const status = path === '/204' ? 204 : path === '/205' ? 205 : path === '/304' ? 304 : 503;
    const length = status === 204 || status === 205 ? {} : { 'content-length': JSON_BODY.length };
    stream.respond({ ':status': status, 'content-type': 'application/json', ...length });
    stream.end(JSON_BODY);
  });
  t.teardown(() => server.close());
  const session = http2.connect(`http://127.0.0.1:${server.port}`);
  session.on('error', () => {});
  await once(session, 'connect');
  t.teardown(() => session.close());

  const head = await request(session, 'HEAD', '/error');
  t.same(head, { status: 503, dataBytes: 0, rstCode: http2.constants.NGHTTP2_NO_ERROR, streamError: undefined }, 'HEAD: the head alone, no DATA, no reset');
  for (const path of ['/204', '/205', '/304']) {
    const seen = await request(session, 'GET', path);
    t.same(seen, { status: Number(path.slice(1)), dataBytes: 0, rstCode: http2.constants.NGHTTP2_NO_ERROR, streamError: undefined }, `GET ${path}: no body, no reset`);
  }
  const get = await request(session, 'GET', '/error');
  t.same(get, { status: 503, dataBytes: JSON_BODY.length, rstCode: http2.constants.NGHTTP2_NO_ERROR, streamError: undefined }, 'GET: the body is sent');
  t.equal(server.connections[0]!.streams.size, 0, 'no stream left open on our side');
  t.same(writeErrors, Array(4).fill('ERR_STREAM_WRITE_AFTER_END'), "the body written after a bodyless head: a write after end on our side, as Node's respond() makes it");
});
