// An HTTP/1.1 caller's request target in absolute-form (`GET http://orders/x`), which RFC 9112
// §3.2.2 has every server accept: the inbound takes it as its path for the policy and the app,
// with the target's authority as Host (the RFC has the received Host ignored). One with userinfo
// or a fragment is refused with a 400 saying so; one without Host on HTTP/1.1 still gets the
// missing-Host 400. Raw requests over mutual TLS to a real inbound listener.

import t from 'tap';
import { FRONTEND_ID, startInbound } from '../helpers/inbound-fixture.js';
import { rawTlsRequest } from '../helpers/raw-http.js';

t.test('absolute-form targets at the inbound', async (t) => {
  const seen: Array<{ url: string | undefined; host: string | undefined }> = [];
  const fx = await startInbound({
    authorize: [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/who'] }],
    app: {
      protocol: 'http',
      handler: (req, res) => {
        seen.push({ url: req.url, host: req.headers.host });
        res.end('ok');
      },
    },
  });
  t.teardown(() => fx.close());
  const tls = await fx.tlsOptions();
  const ask = (head: string) => rawTlsRequest(fx.port, tls, `${head}Connection: close\r\n\r\n`);

  const plain = await ask('GET http://Orders:8443/who?x=1 HTTP/1.1\r\nHost: elsewhere\r\n');
  t.equal(plain.status, 200, 'answered by the app');
  t.same(seen.at(-1), { url: '/who?x=1', host: 'Orders:8443' }, 'the app reads the origin-form path and the target\'s authority as Host');

  const whole = await ask('OPTIONS http://orders HTTP/1.1\r\nHost: orders\r\n');
  t.equal(whole.status, 403, 'OPTIONS with no path: judged (the policy allows GET /who only)');
  const server = await startInbound({ app: { protocol: 'http', handler: (req, res) => res.end(String(req.url)) } });
  t.teardown(() => server.close());
  const options = await rawTlsRequest(server.port, await server.tlsOptions(), 'OPTIONS http://orders HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n');
  t.same([options.status, options.body], [200, '*'], 'OPTIONS http://orders reaches the app as OPTIONS * (RFC 9112 §3.2.4), not as the root');

  const denied = await ask('GET http://orders/admin HTTP/1.1\r\nHost: orders\r\n');
  t.equal(denied.status, 403, 'the policy judges the path inside the URI');
  t.equal(seen.length, 1, 'which the app never saw');

  const userinfo = await ask('GET http://admin@orders/who HTTP/1.1\r\nHost: orders\r\n');
  t.equal(userinfo.status, 400, 'userinfo: 400');
  t.match(userinfo.body, /"error":"bad_request".*absolute-form request target must carry no userinfo/, 'saying why');
  const noName = await ask('GET http:///who HTTP/1.1\r\nHost: orders\r\n');
  t.equal(noName.status, 400, 'an empty authority: 400');
  t.match(noName.body, /"error":"bad_request".*must name a host/, 'saying why');
  const fragment = await ask('GET http://orders/who#top HTTP/1.1\r\nHost: orders\r\n');
  t.equal(fragment.status, 400, 'a fragment: 400');
  const other = await ask('GET ftp://orders/who HTTP/1.1\r\nHost: orders\r\n');
  t.equal(other.status, 400, 'another scheme: 400');
  const noHost = await ask('GET http://orders/who HTTP/1.1\r\n');
  t.equal(noHost.status, 400, 'HTTP/1.1 without Host: still 400');
  t.match(noHost.body, /must carry a Host header/, 'for the missing Host');
  // an HTTP/0.9 request line (no version), which Node's parser takes with the headers after it:
  // passed on as HTTP/1.1, the app read a Host the caller never sent (smuggling review)
  const versionless = await ask('GET /who\r\n');
  t.equal(versionless.status, 400, 'HTTP/0.9: 400');
  t.match(versionless.body, /HTTP\/0\.9 is not taken/, 'saying why');
  t.equal(seen.length, 1, 'none of the refused reached the app');
});
