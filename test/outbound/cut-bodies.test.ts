// An upstream that stops in the middle of a response body with RST_STREAM NO_ERROR (what a Node
// HTTP/2 server sends on stream.destroy(); RFC 9113 §8.1 allows NO_ERROR only after a complete
// answer) has cut that body, on both codecs: the app's HTTP/1.1 response is cut (its connection
// closed before the chunked body's end or its Content-Length), its h2c stream reset with an
// error code (never END_STREAM), and the exchange recorded as upstream_reset, nothing left in
// flight. Before: on the meshcar codec the app's answer stayed open for good; on the node codec
// a chunked or h2c body arrived truncated and looked whole.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { startH2cAppToUpstream, type H2Handler } from '../helpers/outbound-fixture.js';

const cutMidBody: H2Handler = (stream, headers) => {
  stream.on('error', () => {});
  stream.resume();
  const withLength = String(headers[':path']).includes('length');
  stream.respond({ ':status': 200, ...(withLength ? { 'content-length': 1000 } : {}) });
  // the 100 bytes reach the outbound first; then RST_STREAM NO_ERROR, no END_STREAM
  stream.write(Buffer.alloc(100, 0x61), () => setImmediate(() => stream.destroy()));
};

/** An HTTP/1.1 GET through the outbound: how the app's response ended. */
function http1(port: number, path: string): Promise<{ bytes: number; ending: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host: 'payments' }, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve({ bytes, ending: `ended${res.complete ? ', complete' : ''}` }));
      res.on('error', (err) => resolve({ bytes, ending: `cut (${err.message})` }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An h2c GET through the outbound: its close and the reset code. */
function h2c(session: http2.ClientHttp2Session, path: string): Promise<{ bytes: number; rstCode: number | undefined }> {
  return new Promise((resolve) => {
    const stream = session.request({ ':authority': 'payments', ':path': path }, { endStream: true });
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    stream.on('error', () => {});
    stream.on('close', () => resolve({ bytes, rstCode: stream.rstCode }));
  });
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`a body cut with RST_STREAM NO_ERROR is cut for the app too (codec ${codec})`, async (t) => {
    const { fx, session } = await startH2cAppToUpstream(t, codec, { handler: cutMidBody });

    for (const path of ['/chunked', '/with-length']) {
      const got = await http1(fx.port, path);
      t.equal(got.bytes, 100, `HTTP/1.1 ${path}: the 100 bytes sent`);
      t.match(got.ending, /^cut/, `HTTP/1.1 ${path}: the response is cut, not ended (${got.ending})`);
    }
    for (const path of ['/chunked', '/with-length']) {
      const got = await h2c(session, path);
      t.equal(got.bytes, 100, `h2c ${path}: the 100 bytes sent`);
      t.ok(got.rstCode !== undefined && got.rstCode !== http2.constants.NGHTTP2_NO_ERROR, `h2c ${path}: the stream is reset with an error code (${got.rstCode})`);
    }
    const records = await fx.observer.waitForRequests(4);
    t.same(
      records.map((r) => r.errorCode),
      ['upstream_reset', 'upstream_reset', 'upstream_reset', 'upstream_reset'],
      'each exchange recorded as upstream_reset',
    );
    t.equal(fx.outbound.inFlight, 0, 'nothing left in flight');
  });
}
