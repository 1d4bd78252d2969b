// What of an app's response the inbound must not pass on as it came, with both HTTP/2 codecs
// and to an HTTP/1.1 caller: trailer fields RFC 9110 §6.5.1 forbids (Host, Authorization,
// Content-Type, Set-Cookie, Cache-Control, If-*...) are dropped one by one and the valid ones
// (grpc-status, x-checksum) kept; a 204 that announces Content-Length reaches the caller without
// it, as a complete answer (an HTTP/2 peer resets a 204 stream that announces content).

import t from 'tap';
import { h1Request, h2Connect, h2Request, startInbound, type Http1Handler } from '../helpers/inbound-fixture.js';

const FORBIDDEN = {
  host: 'evil.example',
  authorization: 'Bearer stolen',
  'content-type': 'text/evil',
  'set-cookie': 'session=evil',
  'cache-control': 'public, max-age=99999',
  'if-match': '"x"',
  'www-authenticate': 'Basic',
  'content-encoding': 'gzip',
};
const KEPT = { 'grpc-status': '0', 'x-checksum': 'abc', 'x-t': '1' };

const app: Http1Handler = (req, res) => {
  req.resume();
  if (req.url === '/204') {
    res.writeHead(204, { 'content-length': '5', 'x-app': 'yes' });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-t' });
  res.write('hello');
  res.addTrailers({ ...FORBIDDEN, ...KEPT });
  res.end();
};

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const fx = await startInbound({ codec, app: { protocol: 'http', handler: app } });
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();
    const session = await h2Connect(fx.port, tlsOptions);
    t.teardown(() => session.destroy());

    t.test('trailers: forbidden fields dropped, valid ones kept (HTTP/2 caller)', async (t) => {
      const res = await h2Request(session, { ':method': 'GET', ':path': '/trailers' });
      t.equal(res.status, 200);
      t.equal(res.body.toString(), 'hello', 'the whole body');
      t.equal(res.rstCode, 0, 'a clean end');
      const trailers = Object.fromEntries(Object.entries(res.trailers ?? {})); // without Node's symbol key
      t.same(trailers, KEPT);
    });

    t.test('trailers: the same to an HTTP/1.1 caller', async (t) => {
      const res = await h1Request(fx.port, tlsOptions, { path: '/trailers' });
      t.equal(res.body, 'hello');
      t.same(res.trailers, KEPT);
    });

    t.test('204 with Content-Length: relayed without it, complete', async (t) => {
      const res = await h2Request(session, { ':method': 'GET', ':path': '/204' });
      t.equal(res.status, 204);
      t.equal(res.headers['content-length'], undefined, 'no content-length');
      t.equal(res.headers['x-app'], 'yes', 'the rest of the head');
      t.equal(res.rstCode, 0, 'no reset');
      const h1 = await h1Request(fx.port, tlsOptions, { path: '/204' });
      t.equal(h1.status, 204);
      t.equal(h1.headers['content-length'], undefined, 'no content-length to an HTTP/1.1 caller either');
      t.equal(h1.headers['x-app'], 'yes');
    });
  });
}
