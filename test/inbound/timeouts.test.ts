// Inbound timeouts: per-route waits for the app's response head, the idle timeout (no bytes
// either way: 504 before the head, a reset after it), the caller's own deadline headers
// (grpc-timeout, x-request-timeout) honoured only when shorter, and setTimeouts() for the
// next request.

import t from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import { h1Request, h1Stream, h2Connect, h2Request, startInbound, type SimpleResponse } from '../helpers/inbound-fixture.js';
import { InboundTimeouts } from '../../src/inbound/timeouts.js';
import { rawTlsRequest } from '../helpers/raw-http.js';

/**
 * /hang: never answers. /slow/<ms>: answers after ms. /stall: head and a first chunk, then
 * nothing. /upload: answers once the whole body arrived.
 */
function app(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  req.resume();
  const slow = /\/slow\/(\d+)/.exec(url);
  if (slow) {
    const timer = setTimeout(() => res.end('late'), Number(slow[1]));
    res.on('close', () => clearTimeout(timer)); // a request cut at its timeout leaves nothing pending
  } else if (url.includes('/stall')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first chunk');
  } else if (url.includes('/upload')) {
    req.on('end', () => res.end('uploaded'));
  } else if (!url.includes('/hang')) {
    res.end('ok');
  }
}

async function timed(run: () => Promise<SimpleResponse>): Promise<{ res: SimpleResponse; ms: number }> {
  const started = performance.now();
  const res = await run();
  return { res, ms: performance.now() - started };
}

function is504(t: Tap.Test, res: SimpleResponse, what: string): void {
  t.equal(res.status, 504, `${what}: 504`);
  t.equal(res.headers['x-meshcar-error'], 'upstream_timeout', `${what}: upstream_timeout`);
}

t.test('route matching: exact or prefix, first match wins, defaults otherwise', async (t) => {
  const timeouts = new InboundTimeouts({
    timeoutMs: 1000,
    idleTimeoutMs: 9000,
    routes: [
      { path: '/reports/special', timeoutMs: 1 },
      { path: '/reports/*', timeoutMs: 60_000, idleTimeoutMs: 600_000 },
      { path: '/reports/late', timeoutMs: 2 },
      { path: '/exact', idleTimeoutMs: 3 },
    ],
  });
  // timeoutKey: the key a 504's message names, the one to raise; idleTimeoutKey: the one a
  // stream cut by the idle timeout is logged with (stream-cut-log.ts)
  t.same(timeouts.forPath('/reports/special'), { timeoutMs: 1, idleTimeoutMs: 9000, timeoutKey: 'inbound.routes[0].timeout (/reports/special)', idleTimeoutKey: 'inbound.idleTimeout' });
  t.same(timeouts.forPath('/reports/x/y'), { timeoutMs: 60_000, idleTimeoutMs: 600_000, timeoutKey: 'inbound.routes[1].timeout (/reports/*)', idleTimeoutKey: 'inbound.routes[1].idleTimeout (/reports/*)' });
  t.same(timeouts.forPath('/reports/late'), { timeoutMs: 60_000, idleTimeoutMs: 600_000, timeoutKey: 'inbound.routes[1].timeout (/reports/*)', idleTimeoutKey: 'inbound.routes[1].idleTimeout (/reports/*)' }, 'the earlier prefix wins');
  t.same(timeouts.forPath('/exact'), { timeoutMs: 1000, idleTimeoutMs: 3, timeoutKey: 'inbound.timeout', idleTimeoutKey: 'inbound.routes[3].idleTimeout (/exact)' }, 'a route without its own timeout: the inbound\'s');
  t.same(timeouts.forPath('/exact/more'), { timeoutMs: 1000, idleTimeoutMs: 9000, timeoutKey: 'inbound.timeout', idleTimeoutKey: 'inbound.idleTimeout' }, 'an exact route is no prefix');
  t.same(timeouts.forPath('/reports'), { timeoutMs: 1000, idleTimeoutMs: 9000, timeoutKey: 'inbound.timeout', idleTimeoutKey: 'inbound.idleTimeout' });
  t.same(new InboundTimeouts({ timeoutMs: 5 }).forPath('/'), { timeoutMs: 5, idleTimeoutMs: 300_000, timeoutKey: 'inbound.timeout', idleTimeoutKey: 'inbound.idleTimeout' }, 'idle default 5 min');
  t.same(new InboundTimeouts({ timeoutMs: 0 }).forPath('/'), { timeoutMs: 0, idleTimeoutMs: 300_000, timeoutKey: 'inbound.timeout', idleTimeoutKey: 'inbound.idleTimeout' }, 'timeout 0: no head deadline');
  t.throws(() => new InboundTimeouts({ timeoutMs: -1 }));
  t.throws(() => new InboundTimeouts({ timeoutMs: 5, idleTimeoutMs: 0 }));
});

t.test('per-route timeouts', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app } });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  fx.inbound.setTimeouts({ timeoutMs: 1000, routes: [{ path: '/quick/*', timeoutMs: 150 }, { path: '/reports/*', timeoutMs: 3000 }] });

  const quick = await timed(() => h1Request(fx.port, tlsOptions, { path: '/quick/hang' }));
  is504(t, quick.res, 'a shorter route');
  t.equal(JSON.parse(quick.res.body).message, 'the app did not answer within 150 ms (inbound.routes[0].timeout (/quick/*))', "the message names the route's timeout");
  t.ok(quick.ms >= 120 && quick.ms < 700, `the shorter route cut at its timeout (${quick.ms.toFixed(0)} ms)`);
  const other = await timed(() => h1Request(fx.port, tlsOptions, { path: '/hang' }));
  is504(t, other.res, 'the default');
  t.equal(JSON.parse(other.res.body).message, 'the app did not answer within 1000 ms (inbound.timeout)', 'the message names inbound.timeout');
  t.ok(other.ms >= 950, `the default waited its full timeout (${other.ms.toFixed(0)} ms)`);

  const report = await h1Request(fx.port, tlsOptions, { path: '/reports/slow/1300' });
  t.equal(report.status, 200, 'a longer route lets a slow answer through');
  t.equal(report.body, 'late');
  is504(t, await h1Request(fx.port, tlsOptions, { path: '/slow/1300' }), 'the same slow answer elsewhere');
});

t.test('the idle timeout', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app } });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  fx.inbound.setTimeouts({ timeoutMs: 5000, idleTimeoutMs: 250 });

  const before = await timed(() => h1Request(fx.port, tlsOptions, { path: '/hang' }));
  is504(t, before.res, 'no bytes before the head');
  t.ok(before.ms < 1500, `cut at the idle timeout, not the 5 s one (${before.ms.toFixed(0)} ms)`);

  // HTTP/1.1: the head and a chunk went out, then nothing: the connection is cut
  const started = performance.now();
  const cut = await h1Stream(fx.port, tlsOptions, '/stall');
  t.equal(cut.status, 200);
  t.equal(cut.body, 'first chunk');
  t.ok(cut.aborted, 'the stalled body is broken off, not ended');
  t.ok(performance.now() - started < 2000, 'cut at the idle timeout');

  // HTTP/2: the stream is reset
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.destroy());
  const h2 = await h2Request(session, { ':method': 'GET', ':path': '/stall' });
  t.equal(h2.status, 200);
  t.ok((h2.rstCode ?? 0) > 0, `the HTTP/2 stream is reset (code ${h2.rstCode})`);

  // an upload that keeps trickling is not idle
  const upload = await new Promise<SimpleResponse>((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: fx.port, method: 'POST', path: '/upload', agent: false, ALPNProtocols: ['http/1.1'], ...(tlsOptions as https.RequestOptions) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: {} }));
      },
    );
    req.on('error', reject);
    let sent = 0;
    const tick = setInterval(() => {
      req.write('x');
      if (++sent === 6) {
        clearInterval(tick);
        req.end();
      }
    }, 100);
  });
  t.equal(upload.status, 200, 'bytes every 100 ms for 600 ms keep a 250 ms idle timeout at bay');
  t.equal(upload.body, 'uploaded');
});

t.test("the caller's deadline headers", async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, timeoutMs: 2000 });
  t.teardown(() => fx.close());
  const tlsOptions: tls.ConnectionOptions = await fx.tlsOptions();

  const grpc = await timed(() => h1Request(fx.port, tlsOptions, { path: '/hang', headers: { 'grpc-timeout': '150m' } }));
  is504(t, grpc.res, 'grpc-timeout 150m');
  // raising inbound.timeout would not help here: the message says whose deadline it was
  t.equal(JSON.parse(grpc.res.body).message, "the app did not answer within 150 ms (the caller's own deadline: its grpc-timeout or x-request-timeout)");
  t.ok(grpc.ms < 1000, `grpc-timeout shorter than configured is honoured (${grpc.ms.toFixed(0)} ms)`);

  const own = await timed(() => h1Request(fx.port, tlsOptions, { path: '/hang', headers: { 'x-request-timeout': '150ms' } }));
  is504(t, own.res, 'x-request-timeout 150ms');
  t.ok(own.ms < 1000, `x-request-timeout shorter than configured is honoured (${own.ms.toFixed(0)} ms)`);

  fx.inbound.setTimeouts({ timeoutMs: 200 });
  const longer = await timed(() => h1Request(fx.port, tlsOptions, { path: '/slow/3000', headers: { 'grpc-timeout': '10S', 'x-request-timeout': '10s' } }));
  is504(t, longer.res, 'a longer header');
  t.ok(longer.ms < 2500, `a longer header never extends the configured timeout (${longer.ms.toFixed(0)} ms)`);
});

t.test('setTimeouts() applies to the next request', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, timeoutMs: 2000 });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/slow/300' })).status, 200);
  fx.inbound.setTimeouts({ timeoutMs: 100 });
  is504(t, await h1Request(fx.port, tlsOptions, { path: '/slow/300' }), 'after setTimeouts');
  t.throws(() => fx.inbound.setTimeouts({ timeoutMs: -1 }), 'a bad value is refused');
  is504(t, await h1Request(fx.port, tlsOptions, { path: '/slow/300' }), 'and the timeouts in force stay');
  fx.inbound.setTimeouts({ timeoutMs: 2000, routes: [{ path: '/slow/300', timeoutMs: 100 }] });
  is504(t, await h1Request(fx.port, tlsOptions, { path: '/slow/300' }), 'an exact route');
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/slow/301' })).status, 200, 'other paths keep the default');
});

t.test('a caller whose upload stops short gets its 408, and the sidecar carries on', async (t) => {
  // the idle timeout cancels the request toward the app while the caller's body is still open
  // (the head timeout runs only once the body has ended): the caller's own request stream must
  // survive that (undici once took its socket away, and the 504 that followed threw in the
  // timer, ending the process). The app had every byte sent: the caller stalled, 408 (it was a
  // 504 upstream_timeout blaming the app, which a caller's outbound scored against the endpoint)
  const fx = await startInbound({ app: { protocol: 'http', handler: app }, timeoutMs: 200 });
  t.teardown(() => fx.close());
  fx.inbound.setTimeouts({ timeoutMs: 200, idleTimeoutMs: 300 });
  const tlsOptions = await fx.tlsOptions();
  const res = await rawTlsRequest(fx.port, tlsOptions, 'POST /upload HTTP/1.1\r\nHost: orders\r\nContent-Length: 100\r\n\r\n0123456789');
  t.equal(res.status, 408, 'the inbound idle timeout answers the caller');
  t.equal(res.headers['x-meshcar-error'], 'request_timeout');
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/slow/1' })).status, 200, 'and the next request is served');
  t.equal(fx.inbound.inFlight, 0, 'nothing is left in flight');
});
