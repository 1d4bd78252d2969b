// Requests the CA's HTTP parser refuses get the JSON error body every other CA answer has (not
// Node's bare 400, 431 or 408): a request line that is not HTTP, a 20 KB header, and a body that
// stops arriving (at the request timeout, short here), but not a body still coming after its answer
// (a second answer to one request). Raw TLS sockets against a real CA server.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { rawTlsRequest, rawTlsUntilClosed } from '../helpers/raw-http.js';
import { startTestCa } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';

const TLS = { servername: 'localhost', rejectUnauthorized: false };

function assertJsonRefusal(t: Tap.Test, answer: { status: number; headers: Record<string, string>; body: string }, status: number, code: string): void {
  t.equal(answer.status, status, `status ${status}`);
  t.match(answer.headers['content-type'], /^application\/json/, 'a JSON body');
  t.equal(answer.headers['x-meshcar-error'], code);
  let body: unknown;
  try {
    body = JSON.parse(answer.body);
  } catch {
    body = answer.body;
  }
  t.match(body, { error: code, message: String }, `{"error": "${code}", "message": ...}`);
}

t.test('parser refusals are JSON with stable codes', async (t) => {
  const ca = await startTestCa({}, undefined, { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
  t.teardown(() => ca.close());
  const port = ca.server.port;

  const garbage = await rawTlsRequest(port, TLS, 'GARBAGE\r\n\r\n');
  assertJsonRefusal(t, garbage, 400, 'bad_request');

  const huge = await rawTlsRequest(port, TLS, `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nX-A: ${'a'.repeat(20_000)}\r\n\r\n`);
  assertJsonRefusal(t, huge, 431, 'headers_too_large');

  // a body announced and never finished: cut at the request timeout (2 s here), with a 408
  const started = Date.now();
  // (with a join token: the CA reads the body once the caller is known)
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  const stalled = await rawTlsUntilClosed(port, TLS, `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
  t.ok(Date.now() - started < 10_000, `cut within the bounds (${Date.now() - started} ms)`);
  t.match(stalled, /^HTTP\/1\.1 408 /, `408: ${stalled.split('\r\n')[0]}`);
  t.match(stalled, /x-meshcar-error: request_timeout/);
  t.match(stalled, /\{"error":"request_timeout","message":"[^"]+"\}/, 'with the JSON body');
  t.match(await ca.metrics.render(), /meshcar_ca_requests_denied_total\{reason="headers_too_large"\} 1/, 'counted as denied requests');
});

t.test('a refusal before the body is read closes the connection: one answer, never a second', async (t) => {
  // a request timeout of 2 s: kept alive, the connection would get a 408 after the 413
  const ca = await startTestCa({}, undefined, { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
  t.teardown(() => ca.close());
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  const started = Date.now();
  const all = await rawTlsUntilClosed(ca.server.port, TLS, `POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"csr":`);
  t.match(all, /^HTTP\/1\.1 413 /, `413: ${all.split('\r\n')[0]}`);
  t.match(all, /\r\nconnection: close\r\n/i, 'it says the connection closes');
  t.equal(all.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, 'one answer on the connection, no 408 after it');
  t.ok(Date.now() - started < 1_500, `closed at once, not at the request timeout (${Date.now() - started} ms)`);
});

t.test('a body still coming past the request timeout after its answer gets no second answer', async (t) => {
  // Node reads an answered request's body on (it drops it) and its requestTimeout fires on it:
  // a 408 then answered the request a second time (the admin port's too, at 30-60 s)
  const ca = await startTestCa({}, undefined, { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 });
  t.teardown(() => ca.close());
  let out = '';
  const socket = tls.connect({ host: '127.0.0.1', port: ca.server.port, ALPNProtocols: ['http/1.1'], ...TLS }, () => socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n'));
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (out += c));
  socket.on('error', () => undefined);
  // a byte every 100 ms, for at most 8 s: past the 2 s request timeout and its check
  let sent = 0;
  const drip = setInterval(() => {
    if (socket.destroyed || sent++ >= 80) clearInterval(drip);
    else if (socket.writable) socket.write('x');
  }, 100);
  t.teardown(() => clearInterval(drip));
  await once(socket, 'close');
  t.match(out, /^HTTP\/1\.1 200 /, 'the request is answered');
  const statuses = out.match(/HTTP\/1\.1 \d{3} /g) ?? [];
  t.equal(statuses.length, 1, `one answer on the connection, no 408 after it: ${statuses.join(', ')}`);
  t.ok(sent < 80, `the connection was closed at the request timeout, the body unfinished (${sent} bytes sent)`);
});

t.test('405 names the methods allowed; probes take GET and HEAD only; a 404 quotes a long path cut', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const port = ca.server.port;
  const ask = (method: string, path: string) => rawTlsRequest(port, TLS, `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  for (const [method, path, allow] of [['GET', '/v1/sign', 'POST'], ['DELETE', '/v1/bundle', 'GET, HEAD'], ['POST', '/healthz', 'GET, HEAD'], ['TRACE', '/metrics', 'GET, HEAD']] as const) {
    const answer = await ask(method, path);
    assertJsonRefusal(t, answer, 405, 'method_not_allowed');
    t.equal(answer.headers.allow, allow, `${method} ${path}: Allow: ${allow}`);
  }
  const head = await ask('HEAD', '/v1/bundle');
  t.equal(head.status, 200, 'HEAD /v1/bundle: 200');
  t.equal((await ask('GET', '/healthz')).status, 200, 'GET /healthz: 200');
  const long = await ask('GET', `/${'a'.repeat(10_000)}`);
  assertJsonRefusal(t, long, 404, 'not_found');
  t.ok(long.body.length < 600, `the 404's body is ${long.body.length} bytes for a 10,001-character path`);
});

t.test('an Expect other than 100-continue: a JSON 417, counted as a denial (Node\'s own 417 is bare)', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const answer = await rawTlsRequest(ca.server.port, TLS, 'POST /v1/sign HTTP/1.1\r\nHost: localhost\r\nExpect: foo\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
  assertJsonRefusal(t, answer, 417, 'expectation_failed');
  t.match(JSON.parse(answer.body).message, /Expect: "foo" cannot be met/);
  t.match(await ca.metrics.render(), /meshcar_ca_requests_denied_total\{reason="expectation_failed"\} 1/, 'counted as a denied request');
});
