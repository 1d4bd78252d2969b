// RFC 9112 §6.1: an HTTP/1.0 request carrying Transfer-Encoding has faulty framing (an HTTP/1.0
// hop in front may have framed that body otherwise). Both HTTP/1.1 servers that forward (the
// outbound's app listener, the inbound's TLS listener) answer it as read, say `Connection: close`
// and close; what followed it on the connection is never forwarded as a request of its own.
// Raw bytes over real TCP (outbound) and real mutual TLS (inbound).

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { startInbound } from '../helpers/inbound-fixture.js';
import { rawTcpUntilClosed, rawTlsUntilClosed } from '../helpers/raw-http.js';

const FIRST = 'POST /first HTTP/1.0\r\nHost: payments\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
const SECOND = 'GET /second HTTP/1.1\r\nHost: payments\r\n\r\n';

t.test('outbound: answered, Connection: close, closed; the request behind it never forwarded', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const { text, closed } = await rawTcpUntilClosed(fx.port, FIRST + SECOND, 5_000);
  t.ok(closed, 'the outbound closed the connection');
  t.equal(text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `one answer (${JSON.stringify(text.slice(0, 200))})`);
  t.match(text, /^HTTP\/1\.1 200 /, 'the request itself is answered as read');
  t.match(text, /\r\nconnection: close\r\n/i, 'saying the connection closes');
  t.equal(upstream.requests, 1, 'only the first request reached the upstream');

  // an HTTP/1.0 request without a coding keeps its connection as before
  const plain = await rawTcpUntilClosed(fx.port, 'GET /a HTTP/1.0\r\nHost: payments\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nHost: payments\r\n\r\n', 5_000);
  t.equal(plain.text.match(/HTTP\/1\.1 200/g)?.length, 2, 'HTTP/1.0 keep-alive without Transfer-Encoding: both answered');
});

t.test('inbound: answered, Connection: close, closed; the request behind it never reaches the app', async (t) => {
  const seen: string[] = [];
  const fx = await startInbound({
    app: {
      protocol: 'http',
      handler: (req: IncomingMessage, res: ServerResponse) => {
        let body = '';
        req.setEncoding('latin1');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => {
          seen.push(`${req.method} ${req.url} ${body}`);
          res.end('ok');
        });
      },
    },
  });
  t.teardown(() => fx.close());
  const text = await rawTlsUntilClosed(fx.port, await fx.tlsOptions(), FIRST + SECOND, 5_000);
  t.equal(text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `one answer, then the connection closed (${JSON.stringify(text.slice(0, 200))})`);
  t.match(text, /^HTTP\/1\.1 200 /, 'the request itself is answered as read');
  t.match(text, /\r\nconnection: close\r\n/i, 'saying the connection closes');
  t.same(seen, ['POST /first abc'], 'the app saw the first request and its body, nothing after it');
});
