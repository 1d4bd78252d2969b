// An `h2c://` app that is in fact an HTTP/1.1 server, the scheme mistaken in inbound.app: it
// answers the HTTP/2 connection preface with an HTTP/1.1 400, which nghttp2 reads as a broken
// frame before any SETTINGS. The caller's 502 upstream_reset says no SETTINGS came first and
// that meshcar doctor names what the app speaks, where it read only "the app broke the HTTP/2
// protocol on it (Protocol error)". A real node:http server as the app.

import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { h1Request, startInbound } from '../helpers/inbound-fixture.js';

t.test('an HTTP/1.1 server behind an h2c:// app: 502 upstream_reset that says no SETTINGS came first', async (t) => {
  const app = http.createServer((_req, res) => res.end('http/1.1 only'));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const fx = await startInbound({ externalApp: { protocol: 'h2c', port: (app.address() as AddressInfo).port } });
  t.teardown(async () => {
    await fx.close();
    app.close();
  });
  const res = await h1Request(fx.port, await fx.tlsOptions(), { path: '/orders' });
  t.equal(res.status, 502);
  t.equal(res.headers['x-meshcar-error'], 'upstream_reset');
  t.match(JSON.parse(res.body).message, /^the app's connection was closed before an answer: the app broke the HTTP\/2 protocol on it \(.+\); no HTTP\/2 SETTINGS came from it first: an HTTP\/1\.1 server behind an h2c:\/\/ inbound\.app\? meshcar doctor names what it speaks$/);
});
