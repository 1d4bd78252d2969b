// An HTTP/1.1 caller's request head is held to inbound.limits.maxHeaderListSize (16 KiB by
// default) as written, as the CA and admin port hold theirs (src/http/head-size.ts): Node's
// parser counts only the target and the fields' names and values, so 15,000 empty `X:` lines
// (60 KB) reached the app as one 30 KB field, and 1 MiB of whitespace before a value passed,
// though the README promises 431 beyond 16 KiB. Such a head gets 431 headers_too_large with
// the JSON body, recorded, the app never sees it and the connection closes; one pipelined behind
// a request is answered in its turn. Raw requests over real mutual TLS.

import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startInbound } from '../helpers/inbound-fixture.js';
import { rawTlsRequest, rawTlsUntilClosed } from '../helpers/raw-http.js';

t.test('HTTP/1.1 heads over the limit as written: 431, never forwarded', async (t) => {
  let served = 0;
  // an app that takes any head, so that whatever passes the inbound shows
  const app = http.createServer({ maxHeaderSize: 1 << 21 }, (_req, res) => {
    served++;
    res.end('ok');
  });
  app.maxHeadersCount = 0;
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => app.close());
  const fx = await startInbound({ externalApp: { protocol: 'http', port: (app.address() as AddressInfo).port } });
  t.teardown(() => fx.close());
  const tls = await fx.tlsOptions();
  const HOST = 'Host: orders\r\n';

  const heads: Record<string, string> = {
    '15,000 empty field lines (60 KB)': `GET /a HTTP/1.1\r\n${HOST}${'X:\r\n'.repeat(15_000)}\r\n`,
    '4,000 distinct empty fields (23 KB)': `GET /a HTTP/1.1\r\n${HOST}${Array.from({ length: 4000 }, (_, i) => `${i.toString(36)}:\r\n`).join('')}\r\n`,
    '1 MiB of whitespace before a value': `GET /a HTTP/1.1\r\n${HOST}X: ${' '.repeat(1 << 20)}v\r\n\r\n`,
  };
  for (const [what, head] of Object.entries(heads)) {
    const res = await rawTlsRequest(fx.port, tls, head);
    t.equal(res.status, 431, `${what}: 431`);
    t.match(JSON.parse(res.body), { error: 'headers_too_large', message: /over the limit of 16384 bytes/ }, 'our JSON body');
    t.equal(res.headers.connection, 'close', 'the connection closes');
  }
  // an Upgrade (WebSocket) head too: it went to the app and got its 101
  const upgrade = await rawTlsRequest(fx.port, tls, `GET /ws HTTP/1.1\r\n${HOST}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${'X:\r\n'.repeat(15_000)}\r\n`);
  t.equal(upgrade.status, 431, 'an Upgrade with 15,000 empty field lines: 431');
  t.equal(served, 0, 'none reached the app');

  const fine = await rawTlsRequest(fx.port, tls, `GET /a HTTP/1.1\r\n${HOST}X: ${'a'.repeat(10_000)}\r\n\r\n`);
  t.equal(fine.status, 200, 'a 10 KB head: served');
  // pipelined behind a request: that one is answered, then the 431 in its turn
  const both = await rawTlsUntilClosed(fx.port, tls, `GET /a HTTP/1.1\r\n${HOST}\r\nGET /b HTTP/1.1\r\n${HOST}${'X:\r\n'.repeat(15_000)}\r\n`);
  t.match(both, /^HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 431 /, 'pipelined: 200, then 431');
  t.equal(served, 2, 'only the two within the limit reached the app');
  const records = await fx.observer.waitForRequests(7);
  t.equal(records.filter((r) => r.errorCode === 'headers_too_large').length, 5, 'each 431 recorded');
});

// a head the parser refuses outright, pipelined behind a request still unanswered: that request
// is answered, the connection closes, and the refusal is recorded as one not pipelined is (it
// went unrecorded, not even logged)
t.test('a head the parser refuses, pipelined behind a request: recorded', async (t) => {
  const fx = await startInbound({});
  t.teardown(() => fx.close());
  const text = await rawTlsUntilClosed(fx.port, await fx.tlsOptions(), 'GET /a HTTP/1.1\r\nHost: orders\r\n\r\nGET /b HTTP/1.1\r\nHost: orders\r\nBad Name: x\r\n\r\n');
  t.match(text, /^HTTP\/1\.1 200 /, 'the request before it is answered');
  const until = Date.now() + 3000;
  while (fx.observer.refused.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  t.match(fx.observer.refused, [{ direction: 'inbound', status: 400, errorCode: 'bad_request' }], 'the refusal recorded');
});
