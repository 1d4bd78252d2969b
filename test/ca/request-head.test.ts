// The head of a request to the CA, as RFC 9112 has a server judge it, answered as every other
// CA error (JSON, counted under bad_request): an HTTP/1.1 request without Host (Node's own answer
// was a bare 400 with an empty body, not counted), one with two Host fields (it was served), a
// request line of another version (`HTTP/2.0`: it was served); an absolute-form target (RFC 9112
// §3.2.2: every server must accept it) is served by its path (it was a 404 naming the URI).
// Raw TLS sockets against a real CA server.

import t from 'tap';
import { rawTlsRequest } from '../helpers/raw-http.js';
import { startTestCa } from '../helpers/ca.js';

const TLS = { servername: 'localhost', rejectUnauthorized: false };

const deniedAsBadRequest = (text: string) => Number(/^meshcar_ca_requests_denied_total\{reason="bad_request"\} (\d+)$/m.exec(text)?.[1] ?? NaN);

t.test('Host and the version are judged, as JSON 400s counted as bad_request', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const refusals: Array<[string, RegExp, string]> = [
    ['GET /v1/bundle HTTP/1.1\r\n\r\n', /an HTTP\/1\.1 request must carry a Host header/, 'HTTP/1.1 without Host'],
    ['GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', /more than one Host header/, 'two Host fields (RFC 9112 §3.2: a 400)'],
    ['GET /healthz HTTP/2.0\r\nHost: localhost\r\n\r\n', /HTTP\/2\.0 is not taken: send HTTP\/1\.1/, 'an HTTP/2.0 request line'],
    [`GET https://user@localhost:${port}/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n`, /no userinfo/, 'an absolute-form target with userinfo'],
  ];
  for (const [head, message, what] of refusals) {
    const answer = await rawTlsRequest(port, TLS, head);
    t.equal(answer.status, 400, `${what}: 400`);
    t.equal(answer.headers['content-type'], 'application/json', `${what}: a JSON body`);
    t.equal(answer.headers.connection, 'close', `${what}: the connection closes`);
    t.match(JSON.parse(answer.body || '{}'), { error: 'bad_request', message }, `${what}: ${answer.body}`);
  }
  t.equal(deniedAsBadRequest(await ca.metrics.render()), refusals.length, 'each counted as a bad_request denial');

  const http10 = await rawTlsRequest(port, TLS, 'GET /healthz HTTP/1.0\r\n\r\n');
  t.equal(http10.status, 200, 'HTTP/1.0 needs no Host: served');
});

t.test('an absolute-form target is served by its path', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const bundle = await rawTlsRequest(port, TLS, `GET https://localhost:${port}/v1/bundle HTTP/1.1\r\nHost: localhost:${port}\r\n\r\n`);
  t.equal(bundle.status, 200, `GET https://localhost:P/v1/bundle: ${bundle.status} ${bundle.body.slice(0, 120)}`);
  t.match(bundle.body, /^-----BEGIN CERTIFICATE-----/, 'the bundle');
  const health = await rawTlsRequest(port, TLS, `GET HTTPS://localhost:${port}?probe=1 HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  t.equal(health.status, 404, 'no path is "/": a 404');
  t.match(JSON.parse(health.body || '{}'), { error: 'not_found', message: 'no such endpoint: /' }, 'naming "/", not the URI');
  const metrics = await rawTlsRequest(port, TLS, `GET https://localhost:${port}/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  t.equal(metrics.status, 200, 'GET https://localhost:P/metrics');
});
