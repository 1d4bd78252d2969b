// An app's HTTP/1.1 request whose Transfer-Encoding is not `chunked` alone is refused 501
// unsupported_transfer_coding (JSON), and the refusal says `Connection: close`, as the inbound's
// does. With chunked not the last coding (`xchunked`, `gzip`) the body has no length at all (RFC
// 9112 §6.3: 400 and close; nginx and Envoy answer 501): Node's parser fails the connection right
// after the head, and the 501 promised `Connection: keep-alive` on a connection closed under it,
// so an app's client pooled it for its next request. Raw TCP; nothing is forwarded.

import t from 'tap';
import { startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { parseResponse, rawTcpUntilClosed } from '../helpers/raw-http.js';

t.test('a transfer coding other than chunked alone: 501, Connection: close, the connection closed', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const hidden = 'GET /echo?hidden HTTP/1.1\r\nHost: payments\r\n\r\n';
  for (const coding of ['xchunked', 'gzip', 'gzip, chunked', 'identity, chunked']) {
    const body = `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
    const { text, closed } = await rawTcpUntilClosed(fx.port, `POST /echo HTTP/1.1\r\nHost: payments\r\nTransfer-Encoding: ${coding}\r\n\r\n${body}`, 3_000);
    const res = parseResponse(Buffer.from(text, 'latin1'), true);
    t.equal(res?.status, 501, `${coding}: 501`);
    t.equal(res?.headers['x-meshcar-error'], 'unsupported_transfer_coding', `${coding}: unsupported_transfer_coding`);
    t.equal(res?.headers.connection, 'close', `${coding}: the refusal says the connection closes`);
    t.ok(closed, `${coding}: and it does`);
    t.equal(text.match(/HTTP\/1\.1 /g)?.length, 1, `${coding}: one answer, nothing read from the body`);
  }
  t.equal(upstream.requests, 0, 'nothing reached the upstream');
  t.same(
    fx.observer.requests.map((r) => [r.status, r.errorCode]),
    Array.from({ length: 4 }, () => [501, 'unsupported_transfer_coding']),
    'each recorded once, as its refusal',
  );
});
