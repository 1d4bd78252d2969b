// Answers an HTTP/1.1 app may not send, or sends with legal oddities, from an app written as
// raw TCP, as an HTTP/1.1 and an HTTP/2 caller receive them: whitespace around a field value
// (legal OWS) is trimmed, not a 502 or a field dropped; a Transfer-Encoding other than chunked
// alone is 502 bad_gateway (relayed, the coding would be dropped and the body corrupt); and a
// Content-Length that is not the body's, an unasked 101 (or 100 with undici's client: the own one
// skips it, as any interim answer), status 000 or 999, a head over
// the client's limit (to HTTP/1.1 and HTTP/2 callers alike) are the
// app's fault (502 bad_gateway), not a connection that broke (upstream_reset). A reason phrase
// with bytes node:http will not write (DEL, controls) is replaced by the status's own: writing
// it threw, from a node:http listener on the Expect path, and ended the process.

import t from 'tap';
import { h1Request, h2Request, inboundBeforeHttpApp } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { rawTlsUntilClosed, startRawApp } from '../helpers/raw-http.js';

const ANSWERS: Record<string, string> = {
  '/ows': 'HTTP/1.1 200 OK\r\nX-Ws: b   \r\nX-Lead:  \t c\r\nX-Tab: d\t\r\nX-Inner: e  f\r\nContent-Length: 2\r\n\r\nok',
  '/ows-trailer': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-t\r\n\r\n2\r\nok\r\n0\r\nX-T: v  \t\r\n\r\n',
  '/gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nGZIP\r\n0\r\n\r\n',
  '/two-codings': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGZIP\r\n0\r\n\r\n',
  '/chunked-upper': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
  '/cl-differs': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
  '/cl-list': 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok',
  '/cl-same': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok',
  '/unasked-101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello',
  '/bare-101': 'HTTP/1.1 101 Switching Protocols\r\n\r\nhello',
  '/unasked-100': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  // interim answers without end (no final one): the own client stops at 16
  '/endless-1xx': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'.repeat(40),
  // content after an interim answer (which has none): llhttp reads it as the next head
  '/interim-body': 'HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/status-000': 'HTTP/1.1 000 Odd\r\nContent-Length: 2\r\n\r\nok',
  '/status-999': 'HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok',
  // a DEL and a control byte in the reason phrase: llhttp reads them, node:http cannot write them
  '/odd-reason': 'HTTP/1.1 400 Bad\x7fRe\x01quest\r\nContent-Length: 2\r\n\r\nno',
  // ~70 KB of fields: over every app client's head limit (64 KiB, answer-head-limit.ts)
  '/huge-head': 'HTTP/1.1 200 OK\r\n' + Array.from({ length: 140 }, (_, i) => `X-H${i}: ${'v'.repeat(500)}\r\n`).join('') + 'Content-Length: 2\r\n\r\nok',
};

t.test("an app's odd or forbidden answers", async (t) => {
  const hits: Record<string, number> = {};
  const app = await startRawApp(({ line }, socket) => {
    const path = line.split(' ')[1] as string;
    hits[path] = (hits[path] ?? 0) + 1;
    // a coding the client cannot undo, framed by the close
    if (path === '/gzip-close') {
      socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nGZIPBYTES');
      return;
    }
    socket.write(ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  const { fx, tlsOptions, session } = await inboundBeforeHttpApp(t, app);

  t.test('whitespace around a value is trimmed (HTTP/1.1 and HTTP/2 callers)', async (t) => {
    const h1 = await h1Request(fx.port, tlsOptions, { path: '/ows' });
    t.equal(h1.status, 200);
    t.same([h1.headers['x-ws'], h1.headers['x-lead'], h1.headers['x-tab'], h1.headers['x-inner']], ['b', 'c', 'd', 'e  f'], 'HTTP/1.1: trimmed, inner whitespace kept');
    const h2 = await h2Request(session, { ':method': 'GET', ':path': '/ows' });
    t.equal(h2.status, 200, 'HTTP/2: relayed, not a 502');
    t.same([h2.headers['x-ws'], h2.headers['x-lead'], h2.headers['x-tab'], h2.headers['x-inner']], ['b', 'c', 'd', 'e  f'], 'HTTP/2: no field dropped');
    t.equal(h2.body.toString(), 'ok');
  });

  t.test('and around a trailer value', async (t) => {
    const h2 = await h2Request(session, { ':method': 'GET', ':path': '/ows-trailer', te: 'trailers' });
    t.equal(h2.status, 200);
    t.equal(h2.body.toString(), 'ok');
    t.equal(h2.trailers?.['x-t'], 'v', 'HTTP/2: the trailer, trimmed');
    const h1 = await h1Request(fx.port, tlsOptions, { path: '/ows-trailer', headers: { te: 'trailers' } });
    t.equal(h1.trailers['x-t'], 'v', 'HTTP/1.1: the trailer, trimmed');
  });

  t.test('chunked alone, in any case, is relayed', async (t) => {
    const h2 = await h2Request(session, { ':method': 'GET', ':path': '/chunked-upper' });
    t.equal(h2.status, 200);
    t.equal(h2.body.toString(), 'ok');
  });

  const badGateway = async (t: Tap.Test, path: string, what: string, headers: Record<string, string> = {}) => {
    const h1 = await h1Request(fx.port, tlsOptions, { path, headers });
    t.equal(h1.status, 502, `HTTP/1.1: ${what} is 502`);
    t.equal(h1.headers['x-meshcar-error'], 'bad_gateway', 'bad_gateway, the app answered wrong (not upstream_reset)');
    t.equal(JSON.parse(h1.body).error, 'bad_gateway', 'with the JSON error body');
    const h2 = await h2Request(session, { ':method': 'GET', ':path': path, ...headers });
    t.equal(h2.status, 502, `HTTP/2: ${what} is 502`);
    t.equal(h2.headers['x-meshcar-error'], 'bad_gateway');
    t.equal(JSON.parse(h2.body.toString()).error, 'bad_gateway');
    await waitFor(async () => fx.inbound.inFlight === 0, 2000, 'the exchanges to end');
  };

  t.test('a transfer coding other than chunked is 502 bad_gateway, never relayed without it', async (t) => {
    await badGateway(t, '/gzip-chunked', 'gzip, chunked');
    await badGateway(t, '/two-codings', 'gzip and chunked in two fields');
    await badGateway(t, '/gzip-close', 'gzip framed by the close');
    // an Expect request goes to the app through node:http, whose relay checks the same
    await badGateway(t, '/gzip-chunked', 'gzip, chunked (node:http path)', { expect: '100-continue' });
  });

  // undici's overflow was taken for a connection the app closed (upstream_reset, "closed the
  // connection before answering"): the app closed nothing, it answered too much
  t.test("an answer head over the client's limit is 502 bad_gateway", async (t) => {
    await badGateway(t, '/huge-head', 'a 70 KB answer head');
    await badGateway(t, '/huge-head', 'a 70 KB answer head to an Expect request (node:http path)', { expect: '100-continue' });
  });

  t.test("a Content-Length that is not the body's is 502 bad_gateway", async (t) => {
    await badGateway(t, '/cl-differs', 'two Content-Lengths');
    await badGateway(t, '/cl-list', 'Content-Length: 2, 2');
    await badGateway(t, '/cl-same', 'the same Content-Length twice');
  });

  t.test('unasked interim answers and impossible statuses are 502 bad_gateway', async (t) => {
    await badGateway(t, '/unasked-101', 'a 101 to a request that asked no upgrade');
    // an Expect request goes over node:http, which answered neither 'response' nor 'error' to
    // a 101 it took for a switch: the caller waited for the route's timeout (504)
    await badGateway(t, '/unasked-101', 'a 101 to an Expect request (node:http path)', { expect: '100-continue' });
    // one without Upgrade (no switch to node:http either) was said to lack its Upgrade field, as
    // if one had been asked for
    const bare = await h1Request(fx.port, tlsOptions, { path: '/bare-101', headers: { expect: '100-continue' } });
    t.equal(bare.status, 502, 'a bare 101 to an Expect request is 502');
    t.match(JSON.parse(bare.body.toString()), { error: 'bad_gateway', message: /^the app sent a protocol switch \(101\) nobody asked for/ });
    if (process.env.MESHCAR_TEST_APP_CLIENT !== 'undici') {
      // they held the request, and a core reading them, for the route's whole timeout (504)
      const before = hits['/endless-1xx'] ?? 0;
      await badGateway(t, '/endless-1xx', 'interim answers without end');
      const h1 = await h1Request(fx.port, tlsOptions, { path: '/endless-1xx' });
      t.match(JSON.parse(h1.body), { message: /interim \(1xx\) answers without end/ }, 'saying what the app sent');
      t.equal(hits['/endless-1xx'], before + 3, 'sent once per request: an answer refused is no broken connection to retry on');
    }
    if (process.env.MESHCAR_TEST_APP_CLIENT === 'undici') {
      // undici's pool refuses a 100 to a request without Expect ('bad response'); the own client skips it
      await badGateway(t, '/unasked-100', 'a 100 Continue to a request without Expect (undici)');
      t.equal(hits['/unasked-100'], 2, 'sent once per request: an answer refused is no broken connection to retry on');
    } else {
      const h1 = await h1Request(fx.port, tlsOptions, { path: '/unasked-100' });
      t.same([h1.status, h1.body], [200, 'ok'], 'HTTP/1.1: a 100 Continue nobody asked for is skipped, the answer after it relayed');
      const h2 = await h2Request(session, { ':method': 'GET', ':path': '/unasked-100' });
      t.same([h2.status, h2.body.toString()], [200, 'ok'], 'HTTP/2: the same');
      t.equal(hits['/unasked-100'], 2, 'sent once per request');
      // the connection spoke HTTP/1.1 already: not "an h2c or TLS server behind an http:// app?"
      await badGateway(t, '/interim-body', 'content after a 100 Continue');
      const said = JSON.parse((await h1Request(fx.port, tlsOptions, { path: '/interim-body' })).body) as { message: string };
      t.match(said.message, 'the app sent a malformed response (HPE_INVALID_CONSTANT): bytes after an interim (1xx) answer that begin no answer (a 1xx has no content)', 'the message says what was wrong');
      t.notMatch(said.message, /h2c/, 'no h2c or TLS hint');
    }
    await badGateway(t, '/status-000', 'status 000');
    const h2 = await h2Request(session, { ':method': 'GET', ':path': '/status-999' });
    t.equal(h2.status, 502, 'HTTP/2: status 999 (HTTP/2 carries 3 digits 100-599 only) is 502');
    t.equal(h2.headers['x-meshcar-error'], 'bad_gateway');
    const h1 = await h1Request(fx.port, tlsOptions, { path: '/status-999' });
    t.equal(h1.status, 502, 'HTTP/1.1: status 999 is 502 as well, not relayed');
    t.equal(h1.headers['x-meshcar-error'], 'bad_gateway');
    t.match(JSON.parse(h1.body.toString()), { error: 'bad_gateway', message: /status 999, outside 100-599/ });
    // an Expect request goes to the app over node:http (app-http1-node.ts), not undici
    const expecting = await h1Request(fx.port, tlsOptions, { path: '/status-999', headers: { expect: '100-continue' } });
    t.equal(expecting.status, 502, 'with Expect (the node:http path): 502 too');
    t.match(JSON.parse(expecting.body.toString()), { error: 'bad_gateway', message: /status 999, outside 100-599/ });
  });

  t.test("a reason phrase node:http cannot write: the app's answer, with the status's own reason", async (t) => {
    const requests: Array<[string, string]> = [
      ['GET', 'GET /odd-reason HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n'],
      ['an Expect request (the node:http path)', 'POST /odd-reason HTTP/1.1\r\nHost: orders\r\nExpect: 100-continue\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx'],
    ];
    for (const [what, bytes] of requests) {
      const text = await rawTlsUntilClosed(fx.port, tlsOptions, bytes, 5000);
      t.match(text, /^(HTTP\/1\.1 100 Continue\r\n\r\n)?HTTP\/1\.1 400 Bad Request\r\n/, `${what}: 400 Bad Request`);
      t.match(text, /\r\n\r\nno$/, `${what}: with the app's body`);
    }
    const h2 = await h2Request(session, { ':method': 'GET', ':path': '/odd-reason' });
    t.equal(h2.status, 400, 'HTTP/2 (no reason phrase): 400');
    t.equal((await h1Request(fx.port, tlsOptions, { path: '/ows' })).status, 200, 'the inbound still serves');
  });
});
