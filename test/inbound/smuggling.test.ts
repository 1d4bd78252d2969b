// Request smuggling toward the app, tried as an attacker with a valid but narrow identity:
// `frontend` may only GET /public/*, and hides a complete DELETE request (with a forged
// x-forwarded-client-cert) in the body of an allowed GET. Whatever the caller's framing or
// protocol, the app must see exactly the one allowed request with that body, framed so that
// the body stays a body, and never the hidden DELETE. Raw TLS sockets and a raw HTTP/2 client.

import t from 'tap';
import http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FRONTEND_ID, TD, h1Request, h2Connect, h2Request, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import { chunked, rawTlsRequest } from '../helpers/raw-http.js';

const HIDDEN = `DELETE /admin/secret HTTP/1.1\r\nHost: orders\r\nx-forwarded-client-cert: By=x;URI=spiffe://${TD}/svc/admin\r\nContent-Length: 0\r\n\r\n`;
const POLICY = [{ from: [FRONTEND_ID], methods: ['GET'], paths: ['/public/*'] }];

interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP/1.1 app that records every request it parses, body included. */
function recordingHttp1App(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method as string, path: req.url as string, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const body = JSON.stringify({ seen: seen.length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  };
}

/** An h2c app that records every stream it receives, body included. */
function recordingH2cApp(seen: Seen[]) {
  return (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      seen.push({ method: headers[':method'] as string, path: headers[':path'] as string, headers, body: Buffer.concat(chunks).toString('utf8') });
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ seen: seen.length }));
    });
  };
}

/**
 * Runs one attack, then a sentinel request. With one pooled socket to the app, anything the
 * attack left on that connection is parsed before the sentinel, so once the sentinel is seen
 * the record is complete: exactly the allowed request and the sentinel, nothing in between.
 */
async function attackThenSentinel(t: Tap.Test, fx: InboundFixture, seen: Seen[], name: string, attack: () => Promise<number>) {
  const before = seen.length;
  const status = await attack();
  t.equal(status, 200, `${name}: the allowed request is answered`);
  const sentinel = await h1Request(fx.port, await fx.tlsOptions(), { path: `/public/sentinel-${name}` });
  t.equal(sentinel.status, 200, `${name}: the next request is answered`);
  const got = seen.slice(before);
  t.same(
    got.map((r) => `${r.method} ${r.path}`),
    ['GET /public/a', `GET /public/sentinel-${name}`],
    `${name}: the app saw exactly the allowed request and the sentinel`,
  );
  t.equal(got[0]?.body, HIDDEN, `${name}: the hidden request stayed the allowed request's body`);
  t.notOk(seen.some((r) => r.method === 'DELETE'), `${name}: the hidden DELETE never reached the app`);
  return got[0];
}

/**
 * The body reached the app with framing that ends it where it ends: chunked, or its exact
 * length (undici sends a body that has wholly arrived with its length, not chunked).
 */
function framedExactly(seen: Seen | undefined): boolean {
  if (seen === undefined) return false;
  if (seen.headers['transfer-encoding'] === 'chunked') return seen.headers['content-length'] === undefined;
  return seen.headers['content-length'] === String(Buffer.byteLength(HIDDEN));
}

for (const protocol of ['http', 'h2c'] as const) {
  t.test(`smuggling a DELETE inside an allowed GET, toward an ${protocol} app`, async (t) => {
    const seen: Seen[] = [];
    const fx = await startInbound({
      app: protocol === 'http' ? { protocol, handler: recordingHttp1App(seen) } : { protocol, handler: recordingH2cApp(seen) },
      authorize: POLICY,
      // one connection to the app: what one request leaves on it meets the next
      limits: { maxAppSockets: 1 },
    });
    t.teardown(() => fx.close());
    const tlsOptions = await fx.tlsOptions();

    t.test('HTTP/1.1 POST with Transfer-Encoding: gzip, chunked: 501, never forwarded with its coding dropped', async (t) => {
      const before = seen.length;
      const res = await rawTlsRequest(fx.port, tlsOptions, `POST /public/a HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${chunked(HIDDEN)}`);
      t.equal(res.status, 501);
      t.equal(res.headers['x-meshcar-error'], 'unsupported_transfer_coding');
      t.equal(seen.length, before, 'the app saw nothing');
    });

    t.test('HTTP/1.1 GET with Transfer-Encoding: chunked', async (t) => {
      const first = await attackThenSentinel(t, fx, seen, 'te', async () => {
        const res = await rawTlsRequest(fx.port, tlsOptions, `GET /public/a HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(HIDDEN)}`);
        return res.status;
      });
      if (protocol === 'http') t.ok(framedExactly(first), `the app got the body framed: chunked, or with its exact length (${JSON.stringify(first?.headers)})`);
    });

    t.test('HTTP/1.1 GET with Content-Length named in Connection', async (t) => {
      const first = await attackThenSentinel(t, fx, seen, 'cl', async () => {
        const res = await rawTlsRequest(
          fx.port,
          tlsOptions,
          `GET /public/a HTTP/1.1\r\nHost: orders\r\nContent-Length: ${Buffer.byteLength(HIDDEN)}\r\nConnection: keep-alive, content-length\r\n\r\n${HIDDEN}`,
        );
        return res.status;
      });
      t.equal(first?.headers['content-length'], String(Buffer.byteLength(HIDDEN)), 'Connection could not remove the length');
    });

    t.test('HTTP/2 GET with DATA frames and no content-length', async (t) => {
      const session = await h2Connect(fx.port, tlsOptions);
      t.teardown(() => session.close());
      const first = await attackThenSentinel(t, fx, seen, 'h2', async () => {
        const res = await h2Request(session, { ':method': 'GET', ':path': '/public/a' }, HIDDEN);
        return res.status;
      });
      if (protocol === 'http') t.ok(framedExactly(first), `the app got the body framed: chunked, or with its exact length (${JSON.stringify(first?.headers)})`);
    });

    t.test('an Upgrade request with a body is refused before the app', async (t) => {
      for (const framing of [`Content-Length: ${Buffer.byteLength(HIDDEN)}\r\n\r\n${HIDDEN}`, `Transfer-Encoding: chunked\r\n\r\n${chunked(HIDDEN)}`]) {
        const before = seen.length;
        const res = await rawTlsRequest(fx.port, tlsOptions, `GET /public/ws HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${framing}`);
        t.equal(res.status, 400, 'refused');
        t.equal(JSON.parse(res.body).error, 'bad_request');
        t.equal(res.headers.connection, 'close', 'and the connection is closed');
        const sentinel = await h1Request(fx.port, tlsOptions, { path: '/public/after-upgrade' });
        t.equal(sentinel.status, 200);
        t.same(
          seen.slice(before).map((r) => `${r.method} ${r.path}`),
          ['GET /public/after-upgrade'],
          'the app saw neither the upgrade nor its body, and the next request intact',
        );
      }
    });
  });
}

t.test('an Upgrade answered without 101 never returns its app connection to the pool', async (t) => {
  // the app answers Upgrade requests with 426 and keep-alive, as many do; whatever state that
  // leaves the connection in, the next request must not be sent on it
  const ports: string[] = [];
  const fx = await startInbound({
    app: {
      protocol: 'http',
      handler: (req, res) => {
        ports.push(`${req.url} ${req.socket.remotePort} ${req.headers['content-length'] ?? '-'} ${req.headers['transfer-encoding'] ?? '-'}`);
        req.resume();
        if (req.headers.upgrade) res.writeHead(426, { 'content-length': '0' }).end();
        else res.writeHead(200, { 'content-length': '2' }).end('ok');
      },
    },
    limits: { maxAppSockets: 1 },
  });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const upgrade = await rawTlsRequest(fx.port, tlsOptions, 'GET /ws HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  t.equal(upgrade.status, 426);
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/next' })).status, 200);
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/again' })).status, 200);
  const [ws, next, again] = ports.map((line) => line.split(' '));
  t.same([ws?.[2], ws?.[3]], ['-', '-'], 'the upgrade went without framing headers');
  t.not(next?.[1], ws?.[1], 'the request after the upgrade came on another connection');
  t.equal(again?.[1], next?.[1], 'while ordinary requests share a pooled one');
});

t.test('bodiless requests from an HTTP/2 caller reach an HTTP/1.1 app with exact framing', async (t) => {
  const seen: Seen[] = [];
  const fx = await startInbound({ app: { protocol: 'http', handler: recordingHttp1App(seen) } });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  t.teardown(() => session.close());
  for (const method of ['POST', 'GET', 'DELETE']) t.equal((await h2Request(session, { ':method': method, ':path': '/empty' })).status, 200);
  t.same(
    seen.map((r) => `${r.method} cl=${r.headers['content-length'] ?? '-'} te=${r.headers['transfer-encoding'] ?? '-'}`),
    ['POST cl=0 te=-', 'GET cl=- te=-', 'DELETE cl=- te=-'],
    'POST says it has no body; GET and DELETE carry no framing',
  );
});
