// The app's authority (Host, or an absolute-form target's) is checked before routing, on
// requests, Upgrades and h2c alike: routing reads only the name before the last ':', so an
// authority such as `payments:1/../x` or `payments:abc` would otherwise route to payments and
// go upstream as it is, to be refused by the peer (a reset held against the endpoint) or read
// by its app as it likes. Refused locally: 400 bad_request with our JSON body, nothing sent.

import t from 'tap';
import http2 from 'node:http2';
import { rawTcpRequest } from '../helpers/raw-http.js';
import { h2cRequest, request, startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { routableAuthorityProblem } from '../../src/outbound/router.js';

t.test('authorities refused before routing', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const refused = [
    ['Host with a path', 'GET /echo HTTP/1.1\r\nHost: payments:1/../x\r\n\r\n'],
    ['Host with a non-numeric port', 'GET /echo HTTP/1.1\r\nHost: payments:abc\r\n\r\n'],
    ['Host with userinfo-like @', 'GET /echo HTTP/1.1\r\nHost: payments:80@evil.example\r\n\r\n'],
    ['Host with two ports', 'GET /echo HTTP/1.1\r\nHost: payments:1:2\r\n\r\n'],
    ['absolute-form with a non-numeric port', 'GET http://payments:{x}/echo HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['Upgrade with a path in Host', 'GET /ws HTTP/1.1\r\nHost: payments:1/../x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
    ['Upgrade with a non-numeric port', 'GET /ws HTTP/1.1\r\nHost: payments:abc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'],
  ] as const;
  for (const [name, bytes] of refused) {
    const res = await rawTcpRequest(fx.port, bytes);
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.headers['x-meshcar-error'], 'bad_request', `${name}: bad_request`);
    t.equal(JSON.parse(res.body).error, 'bad_request', `${name}: JSON body`);
  }
  t.equal(upstream.requests, 0, 'nothing went upstream');

  const ok = await request(fx.port, { headers: { host: 'payments:8080' } });
  t.equal(ok.status, 200, 'a numeric port still routes');
  const empty = await request(fx.port, { headers: { host: 'payments:' } });
  t.equal(empty.status, 200, 'an empty port is allowed (RFC 3986 port = *DIGIT)');

  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const h2 = await h2cRequest(session, { ':path': '/echo', ':authority': 'payments:abc' });
  t.equal(h2.status, 400, 'h2c: the same check on :authority');
  t.equal(upstream.requests, 2, 'only the good requests went upstream');
});

t.test('routableAuthorityProblem', async (t) => {
  for (const good of ['payments', 'payments:80', 'payments:', '[::1]:443', '[::1]', '127.0.0.1:9', 'a.b.c']) t.equal(routableAuthorityProblem(good), undefined, good);
  for (const bad of ['payments:abc', 'payments:1:2', 'a/b', 'a@b', '[::1]x', '[::1]:8x', 'a]b:1', 'a b', 'payments:123456']) t.type(routableAuthorityProblem(bad), 'string', bad);
});

// The asterisk form is OPTIONS's alone (RFC 9110 §7.1), refused on the inbound too. Sent on, a
// meshcar inbound's codec resets the stream: the app got 502 upstream_reset after two retries,
// and each try counted as a failure of a healthy endpoint (found driving outcomes through a pair).
t.test('the request target * with another method than OPTIONS: 400 here, nothing sent', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const res = await rawTcpRequest(fx.port, 'GET * HTTP/1.1\r\nHost: payments\r\nx-request-id: star\r\n\r\n');
  t.equal(res.status, 400);
  t.equal(res.headers['x-meshcar-error'], 'bad_request');
  // (an h2c app's `:path: *` with another method never reaches the forwarder: Node's server
  // resets that stream with PROTOCOL_ERROR)
  t.equal(upstream.requests, 0, 'nothing went upstream');
  t.match(fx.observer.requests.find((r) => r.requestId === 'star'), { peer: 'payments', status: 400, errorCode: 'bad_request' }, 'recorded as our refusal');
  const options = await rawTcpRequest(fx.port, 'OPTIONS * HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.equal(options.status, 200, 'OPTIONS * goes upstream');
  t.equal(upstream.requests, 1);
});
