// HTTP/1.1 requests a caller pipelines to the inbound reach the app one at a time, each after
// the answer before it. Node's server writes answers in order but drops those queued behind an
// answer that ends the connection: a request forwarded meanwhile was acted on by the app, and
// the caller never had its answer (seen: a POST pipelined behind a request refused 400 with
// `Connection: close` for its path, behind a 501 for its transfer coding, and behind an
// Expect: 100-continue request whose body came at once and was answered without a 100).
// Raw mutual TLS toward the inbound, a raw app that answers each head at once.

import t from 'tap';
import { startInbound } from '../helpers/inbound-fixture.js';
import { rawTlsUntilClosed, startEagerApp } from '../helpers/raw-http.js';

const answers = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
const B = 'POST /b HTTP/1.1\r\nHost: orders\r\nContent-Length: 0\r\n\r\n';

t.test('requests pipelined to the inbound wait for the answer before them', async (t) => {
  const seen: string[] = [];
  const app = await startEagerApp(seen);
  const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const tlsOptions = await fx.tlsOptions();

  const refused: Array<[string, string, string]> = [
    ['a dot-segment path (400)', `POST /a/../b HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\n\r\nHELLO${B}`, 'HTTP/1.1 400'],
    ['gzip, chunked (501)', `POST /a HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nHELLO\r\n0\r\n\r\n${B}`, 'HTTP/1.1 501'],
    ['an eager Expect body answered without a 100', `POST /a HTTP/1.1\r\nHost: orders\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nHELLO${B}`, 'HTTP/1.1 200'],
  ];
  for (const [what, bytes, status] of refused) {
    seen.length = 0;
    const text = await rawTlsUntilClosed(fx.port, tlsOptions, bytes);
    t.same(answers(text), [status], `${what}, then a POST: one answer, then the connection closes`);
    t.notOk(seen.includes('POST /b'), `${what}: the POST behind it never reached the app`);
  }

  // a request behind, its chunked body broken in the same write: the earlier answer goes out,
  // then the broken one's 400, then the connection closes (it went to the app, body and all,
  // in its turn: a review)
  seen.length = 0;
  const broken = await rawTlsUntilClosed(fx.port, tlsOptions, `GET /a HTTP/1.1\r\nHost: orders\r\n\r\nPOST /bad HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`);
  t.same(answers(broken), ['HTTP/1.1 200', 'HTTP/1.1 400'], 'GET then a broken chunked POST: the GET answered, then the POST refused in its turn');
  t.match(broken, /"error":"bad_request"/);
  t.same(seen, ['GET /a'], 'the app never got the broken POST');

  seen.length = 0;
  const text = await rawTlsUntilClosed(fx.port, tlsOptions, `GET /one HTTP/1.1\r\nHost: orders\r\n\r\nPOST /two HTTP/1.1\r\nHost: orders\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n`);
  t.same(answers(text), ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200'], 'ordinary pipelining: three answers');
  t.same(seen, ['GET /one', 'POST /two', 'GET /three'], 'the app got each once, in order');
});
