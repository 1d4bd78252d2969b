// What of an upstream's HTTP/2 answer the outbound must not pass on to its app (HTTP/1.1 or h2c), with
// both codecs: trailer fields RFC 9110 §6.5.1 forbids (a Content-Length trailer made the app's
// parser refuse the whole chunked response; a Host trailer was passed on) are dropped and the
// valid ones kept; a 204 that announces Content-Length reaches the app without it (the app's
// client would wait for, or fail over, content a 204 never has). Node's codec (nghttp2) itself
// resets a stream whose trailers hold content-length or whose 204 announces content
// (PROTOCOL_ERROR): those two cases reach the forwarder with the meshcar codec only.

import t from 'tap';
import http2 from 'node:http2';
import { h2cRequest, makePki, request, startOutbound, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';

const KEPT = { 'grpc-status': '0', 'x-t': '1' };

const handler: H2Handler = (stream, headers) => {
  stream.on('error', () => {});
  if (headers[':path'] === '/204') {
    stream.respond({ ':status': 204, 'content-length': '5', 'x-up': 'yes' }, { endStream: true });
    return;
  }
  stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
  // the body's own length: dropped (one other than the body's resets the stream, as nghttp2 does)
  const framing = headers[':path'] === '/trailers-cl' ? { 'content-length': '5' } : {};
  stream.once('wantTrailers', () => stream.sendTrailers({ ...framing, host: 'evil.example', authorization: 'Bearer x', 'content-type': 'text/evil', 'if-match': '"x"', ...KEPT }));
  stream.end('hello');
};

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki, { handler });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });

    for (const path of codec === 'meshcar' ? ['/trailers', '/trailers-cl'] : ['/trailers']) {
      const res = await request(fx.port, { path });
      t.equal(res.status, 200, path);
      t.equal(res.text, 'hello', `${path}: the whole body, not cut`);
      t.same(res.trailers, KEPT, `${path}: forbidden trailers dropped, valid ones kept`);
    }
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    session.on('error', () => {});
    t.teardown(() => session.destroy());
    const h2 = await h2cRequest(session, { ':path': codec === 'meshcar' ? '/trailers-cl' : '/trailers' });
    t.equal(h2.body.toString(), 'hello', 'h2c app: the whole body');
    t.same(Object.fromEntries(Object.entries(h2.trailers ?? {})), KEPT, 'h2c app: forbidden trailers dropped, valid ones kept');
    if (codec === 'node') return;

    const nothing = await request(fx.port, { path: '/204' });
    t.equal(nothing.status, 204);
    t.equal(nothing.headers['content-length'], undefined, 'no content-length');
    t.equal(nothing.headers['x-up'], 'yes', 'the rest of the head');
    const h2Nothing = await h2cRequest(session, { ':path': '/204' });
    t.equal(h2Nothing.status, 204, 'h2c app: a 204 (its codec resets one that announces content)');
    t.equal(h2Nothing.headers['content-length'], undefined);
  });
}
