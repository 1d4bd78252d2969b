// What the outbound listener answers to HTTP/1.1 it refuses before any forwarder sees it: a
// head Node's parser rejects, a head over the size limit, a CONNECT, a head that never ends. Each is an error of ours
// like any other (status, x-meshcar-error, JSON body with the code), then the connection
// closes; Node alone answered a bare 400/431 and closed a CONNECT without a word. Raw TCP,
// since no well-behaved client sends these. No upstream is reached (none is configured).

import t from 'tap';
import { makePki, startOutbound, TD } from '../helpers/outbound-fixture.js';
import { rawTcpRequest, type RawResponse } from '../helpers/raw-http.js';

function assertRefusal(t: Tap.Test, res: RawResponse, status: number, code: string, message: RegExp): void {
  t.equal(res.status, status, `${status}`);
  t.equal(res.headers['x-meshcar-error'], code, 'x-meshcar-error names the code');
  t.equal(res.headers['content-type'], 'application/json');
  t.equal(res.headers.connection, 'close', 'and the connection closes');
  t.match(JSON.parse(res.body), { error: code, message });
}

t.test('HTTP/1.1 refused by the outbound listener: JSON errors with stable codes', async (t) => {
  const pki = await makePki(TD);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: ['127.0.0.1:9'] }]);
  t.teardown(() => fx.close());

  const malformed = await rawTcpRequest(fx.port, 'GET /x HTTP/1.1\r\nHost: payments\r\nBad Header: y\r\n\r\n');
  assertRefusal(t, malformed, 400, 'bad_request', /not valid HTTP\/1\.1 \(HPE_INVALID_HEADER_TOKEN\)/);

  const oversized = await rawTcpRequest(fx.port, `GET /x HTTP/1.1\r\nHost: payments\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assertRefusal(t, oversized, 431, 'headers_too_large', /request head is over the outbound listener's limit of 16384 bytes/);

  const connect = await rawTcpRequest(fx.port, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nX-Request-Id: tunnel-1\r\n\r\n');
  assertRefusal(t, connect, 400, 'bad_request', /CONNECT is not supported/);
  // a request was read: its id, in the body and the header, as for every other error answer
  t.equal(JSON.parse(connect.body).requestId, 'tunnel-1', 'the CONNECT 400 carries the caller\'s request id');
  t.equal(connect.headers['x-request-id'], 'tunnel-1');
  const anonymous = await rawTcpRequest(fx.port, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
  t.match(JSON.parse(anonymous.body).requestId, /^[0-9a-f-]{36}$/, 'or one made for it');
  // no request was read (the head never parsed): no id to give
  t.notOk('requestId' in JSON.parse(oversized.body), 'the 431 has none: its head was never read');

  t.equal(fx.observer.requests.length, 0, 'none of them became a request');
  t.same(
    fx.observer.refused.map((r) => [r.method, r.requestId, r.status, r.errorCode]),
    [[undefined, undefined, 400, 'bad_request'], [undefined, undefined, 431, 'headers_too_large'], ['CONNECT', 'tunnel-1', 400, 'bad_request'], ['CONNECT', JSON.parse(anonymous.body).requestId, 400, 'bad_request']],
    'each is in the access log, a CONNECT with its method and id',
  );
});

t.test('a request head the app never finishes is answered 408 request_timeout (JSON) within outbound headersTimeoutMs', async (t) => {
  const pki = await makePki(TD);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: ['127.0.0.1:9'] }], { headersTimeoutMs: 400 });
  t.teardown(() => fx.close());
  const started = Date.now();
  const stalled = await rawTcpRequest(fx.port, 'GET /x HTTP/1.1\r\nHost: payments\r\nX-Slow: ');
  assertRefusal(t, stalled, 408, 'request_timeout', /request head did not arrive/);
  t.ok(Date.now() - started < 3_000, `cut off after ${Date.now() - started} ms`);
  t.equal(fx.observer.requests.length, 0, 'it never became a request');
});

t.test('Host given twice or not at all, an Expect other than 100-continue: JSON errors, not Node’s bare ones', async (t) => {
  const pki = await makePki(TD);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: ['127.0.0.1:9'] }, { name: 'billing', endpoints: ['127.0.0.1:9'] }]);
  t.teardown(() => fx.close());
  const json = (res: RawResponse, status: number, code: string, message: RegExp, what: string) => {
    t.equal(res.status, status, `${what}: ${status}`);
    t.equal(res.headers['x-meshcar-error'], code, `${what}: x-meshcar-error`);
    t.match(JSON.parse(res.body), { error: code, message }, `${what}: JSON body`);
  };
  json(await rawTcpRequest(fx.port, 'GET /x HTTP/1.1\r\nHost: payments\r\nHost: billing\r\n\r\n'), 400, 'bad_request', /more than one Host header/, 'two Host fields');
  json(
    await rawTcpRequest(fx.port, 'GET /x HTTP/1.1\r\nHost: payments\r\nHost: billing\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    400,
    'bad_request',
    /more than one Host header/,
    'an Upgrade with two Host fields',
  );
  json(await rawTcpRequest(fx.port, 'GET /x HTTP/1.1\r\n\r\n'), 400, 'bad_request', /must carry a Host header/, 'no Host');
  json(await rawTcpRequest(fx.port, 'GET /x\r\nHost: payments\r\n\r\n'), 400, 'bad_request', /HTTP\/0\.9 is not taken/, 'an HTTP/0.9 request line');
  const expect = await rawTcpRequest(fx.port, 'POST /x HTTP/1.1\r\nHost: payments\r\nExpect: foo\r\nContent-Length: 3\r\n\r\nabc');
  json(expect, 417, 'expectation_failed', /Expect: "foo" cannot be met/, 'Expect: foo');
  t.equal(expect.headers.connection, 'close', 'the unread body goes with the connection');
  await fx.observer.waitForRequests(5);
  t.same(
    fx.observer.requests.map((r) => [r.status, r.errorCode]),
    [
      [400, 'bad_request'],
      [400, 'bad_request'],
      [400, 'bad_request'],
      [400, 'bad_request'],
      [417, 'expectation_failed'],
    ],
    'the Host refusals and the 417 are requests like any other',
  );
});

t.test('a transfer coding other than chunked alone is 501 unsupported_transfer_coding (the body would go on still coded, its coding dropped)', async (t) => {
  const pki = await makePki(TD);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: ['127.0.0.1:9'] }]);
  t.teardown(() => fx.close());
  const res = await rawTcpRequest(fx.port, 'POST /x HTTP/1.1\r\nHost: payments\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  t.equal(res.status, 501);
  t.equal(res.headers['x-meshcar-error'], 'unsupported_transfer_coding');
  t.match(JSON.parse(res.body), { error: 'unsupported_transfer_coding', message: /Transfer-Encoding "gzip, chunked" is not supported: only chunked/ });
});
