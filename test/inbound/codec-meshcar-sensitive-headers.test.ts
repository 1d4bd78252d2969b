// http2.codec meshcar on the inbound: credentials in the app's response head (cookies of any
// length, CSRF and API tokens) go to the caller as never-indexed literals (RFC 7541 §7.1.3,
// src/http/sensitive-headers.ts), kept out of the HPACK table the connection's responses share.
// The caller is Node's http2 client (nghttp2): it lists the fields it received never-indexed
// under http2.sensitiveHeaders.

import t from 'tap';
import http2 from 'node:http2';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

t.test('response credentials reach the caller never-indexed, on every response of the connection', async (t) => {
  const fx = await startInbound({
    codec: 'meshcar',
    app: {
      protocol: 'http',
      handler: (_req, res) => {
        res.setHeader('set-cookie', 'session=0123456789abcdef0123456789abcdef');
        res.setHeader('x-csrf-token', 'csrf-42');
        res.setHeader('x-plain', 'visible');
        res.end('ok');
      },
    },
  });
  t.teardown(fx.close);
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => session.close());
  for (const n of [1, 2]) {
    const res = await h2Request(session, { ':path': '/' });
    t.equal(res.status, 200);
    const sensitive = (res.headers as Record<symbol, string[]>)[http2.sensitiveHeaders] ?? [];
    t.ok(sensitive.includes('set-cookie') && sensitive.includes('x-csrf-token'), `response ${n}: set-cookie and x-csrf-token never indexed (${sensitive.join(', ')})`);
    t.notOk(sensitive.includes('x-plain'), `response ${n}: other fields indexed as before`);
  }
});
