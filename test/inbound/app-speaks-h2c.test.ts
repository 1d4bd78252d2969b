// An `http://` app that is in fact an HTTP/2 (h2c) server, the scheme mistaken in inbound.app:
// its answer to an HTTP/1.1 request is an HTTP/2 frame, and the caller gets 502 bad_gateway
// saying what it sent is not HTTP/1.1 and that meshcar doctor names what the app speaks, where
// it read only "the app sent a malformed response (HPE_INVALID_CONSTANT)". A real node:http2
// server as the app, HTTP/1.1 and HTTP/2 callers.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

// the parser's words in the parentheses: llhttp's code (meshcar's app client) or its reason (undici's)
const SAID = /^the app sent a malformed response \((HPE_INVALID_CONSTANT|Response does not match the HTTP\/1\.1 protocol \(Expected HTTP\/.*\))\): what it sent is not HTTP\/1\.1 \(an HTTP\/2 \(h2c\) or TLS server behind an http:\/\/ inbound\.app\? meshcar doctor names what it speaks\)$/;

t.test('an h2c server behind an http:// app: 502 bad_gateway that says it is not HTTP/1.1', async (t) => {
  const app = http2.createServer((_req, res) => res.end('h2 only'));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const fx = await startInbound({ externalApp: { protocol: 'http', port: (app.address() as AddressInfo).port } });
  t.teardown(async () => {
    await fx.close();
    app.close();
  });
  const tlsOptions = await fx.tlsOptions();
  const h1 = await h1Request(fx.port, tlsOptions, { path: '/orders' });
  t.equal(h1.status, 502, 'HTTP/1.1 caller: 502');
  t.equal(h1.headers['x-meshcar-error'], 'bad_gateway');
  t.match(JSON.parse(h1.body).message, SAID, 'HTTP/1.1 caller: the message says what is wrong');
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  const h2 = await h2Request(session, { ':method': 'GET', ':path': '/orders' });
  t.equal(h2.status, 502, 'HTTP/2 caller: 502');
  t.match(JSON.parse(h2.body).message, SAID, 'HTTP/2 caller: the same message');
});
