// A request target that cannot become an HTTP/2 :path is the app's 400, sent nowhere: `*`
// with any method but OPTIONS (RFC 9110 §7.1), and an absolute URI of another scheme than
// http or https, on requests and Upgrades alike. The peer's codec resets such a stream: the
// attempt used to retry it twice and answer 502 upstream_reset, each reset held against the
// endpoint toward ejection. OPTIONS * and http(s) absolute-form still go upstream (an OPTIONS
// whose URI has no path nor query as OPTIONS *, RFC 9113 §8.3.1). (An h2c
// app's `:path: *` with another method never reaches the forwarder: Node's server resets it.)

import t from 'tap';
import { rawTcpRequest } from '../helpers/raw-http.js';
import http2 from 'node:http2';
import { h2cRequest, startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { targetFormProblem } from '../../src/outbound/router.js';

const upgrade = (target: string) => `GET ${target} HTTP/1.1\r\nHost: payments\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

t.test('targets no HTTP/2 peer takes are refused before any attempt', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const refused = [
    ['GET *', 'GET * HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['DELETE *', 'DELETE * HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['POST * with a body', 'POST * HTTP/1.1\r\nHost: payments\r\nContent-Length: 2\r\n\r\nhi'],
    ['an ftp:// absolute URI', 'GET ftp://payments/x HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['OPTIONS with an ftp:// absolute URI', 'OPTIONS ftp://payments/x HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['an Upgrade to *', upgrade('*')],
    ['a # in the path', 'GET /orders/mine#x HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['a # in the query', 'GET /orders?id=1#x HTTP/1.1\r\nHost: payments\r\n\r\n'],
    ['an Upgrade to a target with a #', upgrade('/ws#x')],
  ] as const;
  for (const [name, bytes] of refused) {
    const before = fx.observer.requests.length;
    const res = await rawTcpRequest(fx.port, bytes);
    t.equal(res.status, 400, `${name}: 400`);
    t.equal(res.headers['x-meshcar-error'], 'bad_request', `${name}: bad_request`);
    t.match(JSON.parse(res.body).message, /request target/, `${name}: the message names the target`);
    await fx.observer.waitForRequests(before + 1);
    const record = fx.observer.requests[before];
    t.equal(record?.errorCode, 'bad_request', `${name}: recorded as bad_request`);
    t.equal(record?.endpoint, undefined, `${name}: no endpoint was tried`);
    if (!name.startsWith('an Upgrade')) t.equal(record?.peer, 'payments', `${name}: under the upstream the app named`);
  }
  t.equal(upstream.requests, 0, 'nothing went upstream');

  const options = await rawTcpRequest(fx.port, 'OPTIONS * HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.equal(options.status, 200, 'OPTIONS * goes upstream');
  const absolute = await rawTcpRequest(fx.port, 'GET HTTP://payments/echo HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.equal(absolute.status, 200, 'an http:// absolute URI (any case) goes upstream as its path');
  const withFragment = await rawTcpRequest(fx.port, 'GET http://payments/echo?a=1#x HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.equal(withFragment.status, 200, "an absolute URI's fragment is cut off, as a client would");
  t.equal(JSON.parse(withFragment.body).path, '/echo?a=1', 'and the path goes on without it');
  t.equal(upstream.requests, 3, 'all three reached the upstream');
  // an OPTIONS whose absolute URI has no path (and no query) asks about the whole server: `*`
  // upstream (RFC 9112 §3.2.4, RFC 9113 §8.3.1), not the root resource
  const whole = await rawTcpRequest(fx.port, 'OPTIONS http://payments HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.same([whole.status, JSON.parse(whole.body).path], [200, '*'], 'OPTIONS http://payments: :path * upstream');
  const rooted = await rawTcpRequest(fx.port, 'OPTIONS http://payments/ HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.equal(JSON.parse(rooted.body).path, '/', 'OPTIONS http://payments/: the root, as written');
  const queried = await rawTcpRequest(fx.port, 'OPTIONS http://payments?x=1 HTTP/1.1\r\nHost: payments\r\n\r\n');
  t.equal(JSON.parse(queried.body).path, '/?x=1', 'with a query: the root with it');
  t.equal(JSON.parse((await rawTcpRequest(fx.port, 'GET http://payments HTTP/1.1\r\nHost: payments\r\n\r\n')).body).path, '/', 'a GET with no path: /');
  t.equal(upstream.requests, 7, 'those four went upstream too');

  // an h2c app's :path with a # is refused the same way
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => session.close());
  const h2c = await h2cRequest(session, { ':method': 'GET', ':path': '/orders/mine#x', ':authority': 'payments' });
  t.equal(h2c.status, 400, 'h2c :path with a #: 400');
  t.equal(h2c.headers['x-meshcar-error'], 'bad_request');
  t.equal(upstream.requests, 7, 'nothing more went upstream');
});

t.test('targetFormProblem', async (t) => {
  for (const [method, path] of [['GET', '/'], ['GET', '/a?b'], ['OPTIONS', '*'], ['OPTIONS', '/x'], ['GET', '//x']]) t.equal(targetFormProblem(method!, path!), undefined, `${method} ${path}`);
  for (const [method, path] of [['GET', '*'], ['POST', '*'], ['options', '*'], ['GET', 'ftp://a/b'], ['GET', 'a'], ['OPTIONS', 'ftp://a/b'], ['GET', '/a#b'], ['GET', '/a?b#c']]) t.type(targetFormProblem(method!, path!), 'string', `${method} ${path}`);
});
