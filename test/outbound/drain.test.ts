// Drain: the listener stops accepting; requests in flight finish (HTTP/1.1 answers carry
// Connection: close, h2c sessions get GOAWAY), idle keep-alive connections close, and then the
// upstream sessions close. A drain that times out cuts what is left. close() stops everything.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { h2cRequest, makePki, request, sleep, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';

/** Resolves once `check` holds, polling; fails the test after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

t.test('drain lets requests in flight finish, then closes', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });

  // an idle keep-alive connection from before the drain
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  t.equal((await request(fx.port, { agent })).status, 200);
  const idleSocket = [...Object.values(agent.freeSockets)].flat()[0] as net.Socket;
  t.ok(idleSocket, 'an idle kept-alive connection');
  const idleClosed = new Promise<void>((resolve) => idleSocket.once('close', () => resolve()));

  const h2c = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => h2c.destroy());
  h2c.on('error', () => {});
  const goaway = new Promise<void>((resolve) => h2c.once('goaway', () => resolve()));
  t.equal((await h2cRequest(h2c, { ':path': '/echo' })).status, 200);

  const slowHttp1 = request(fx.port, { path: '/slow/400' });
  const slowH2c = h2cRequest(h2c, { ':path': '/slow/400' });
  await until(() => fx.outbound.inFlight === 2, 'both requests in flight');
  t.equal(fx.outbound.idleForMs(), 0, 'busy: not idle');
  const work = Promise.all([slowHttp1, slowH2c]);

  const started = Date.now();
  const drained = fx.outbound.drain(5000);
  t.equal(fx.outbound.draining, true);
  // GOAWAY and the idle connection's close come at once: before the requests in flight end
  const first = await Promise.race([Promise.all([goaway, idleClosed]).then(() => 'told'), work.then(() => 'work finished')]);
  t.equal(first, 'told', 'the h2c app session got GOAWAY and the idle keep-alive connection was closed while requests were still in flight');
  t.ok(await connectRefused(fx.port), 'no new connections');

  const [one, two] = await work;
  t.equal(one.status, 200, 'the HTTP/1.1 request in flight finished');
  t.equal(one.headers.connection, 'close', 'with Connection: close');
  t.equal(two.status, 200, 'the h2c request in flight finished');
  await drained;
  const took = Date.now() - started;
  t.ok(took >= 250 && took < 2000, `drain waited for them (${took} ms)`);
  await until(() => fx.outbound.sessionCount('payments') === 0 && upstream.sessions.size === 0, 'the upstream sessions closed');
  t.equal(fx.outbound.sessionCount('payments'), 0, 'then the upstream sessions closed');
  t.equal(upstream.sessions.size, 0, 'as the upstream saw it');
  t.ok(fx.outbound.idleForMs() > 0);
});

/** An outbound whose one upstream never answers (its requests stay in flight until cut). */
async function outboundToSilentUpstream(t: Tap.Test) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, { handler: (stream) => stream.on('error', () => {}) });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 60_000 }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  return fx;
}

t.test('a drain that times out cuts what is left', async (t) => {
  const fx = await outboundToSilentUpstream(t);
  const hanging = request(fx.port, { path: '/hang' }).then(
    (r) => `status ${r.status}`,
    (err: NodeJS.ErrnoException) => String(err.code),
  );
  await until(() => fx.outbound.inFlight === 1, 'the request in flight');
  const started = Date.now();
  await fx.outbound.drain(300);
  const took = Date.now() - started;
  t.ok(took >= 280 && took < 1000, `bounded by the timeout (${took} ms)`);
  t.equal(await hanging, 'ECONNRESET', 'the request left in flight was cut');
  await until(() => fx.outbound.inFlight === 0, 'nothing in flight');
  t.equal(fx.outbound.inFlight, 0);
  // cut by the sidecar: not the app leaving (499, reset), which it used to be recorded as
  const [record] = await fx.observer.waitForRequests(1);
  t.same({ status: record?.status, errorCode: record?.errorCode }, { status: 503, errorCode: 'drain_timeout' }, 'recorded as cut at the drain timeout');
});

t.test('a POST cut by a drain that times out is recorded as cut, not as the upstream failing', async (t) => {
  // a POST is not sent again: the upstream stream's end at the cut failed it as upstream_reset
  // while the app's connection, already destroyed, had not yet closed, so the record said 502
  // with an error body's bytes that never went out (the drain review, with a pair of sidecars)
  const fx = await outboundToSilentUpstream(t);
  const hanging = request(fx.port, { method: 'POST', path: '/hang', body: 'hi', headers: { 'content-type': 'text/plain' } }).then(
    (r) => `status ${r.status}`,
    (err: NodeJS.ErrnoException) => String(err.code),
  );
  await until(() => fx.outbound.inFlight === 1, 'the request in flight');
  await fx.outbound.drain(300);
  // then the stop, as a sidecar's follows its drain: the upstream sessions close at once, before
  // the app's destroyed connection has told its close
  await fx.outbound.close();
  t.equal(await hanging, 'ECONNRESET', 'the request left in flight was cut');
  const [record] = await fx.observer.waitForRequests(1);
  t.same({ status: record?.status, errorCode: record?.errorCode, bytesOut: record?.bytesOut }, { status: 503, errorCode: 'drain_timeout', bytesOut: 0 }, 'recorded as cut at the drain timeout, nothing sent');
});

t.test('a drain that times out cuts an h2c stream with an error, not a clean end', async (t) => {
  // A stream cut at the drain timeout used to close under a GOAWAY(NO_ERROR) naming it as
  // processed: a Node client saw its stream end without an answer and no error at all.
  const fx = await outboundToSilentUpstream(t);
  const h2c = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => h2c.destroy());
  h2c.on('error', () => {});
  const hanging = h2cRequest(h2c, { ':path': '/hang' }).then(
    (r) => `ended cleanly, status ${r.status}`,
    (err: NodeJS.ErrnoException) => String(err.code),
  );
  await until(() => fx.outbound.inFlight === 1, 'the request in flight');
  await fx.outbound.drain(300);
  t.match(await hanging, /^ERR_HTTP2_(STREAM|SESSION)_ERROR$/, "the app's stream fails");
  const [record] = await fx.observer.waitForRequests(1);
  t.same({ status: record?.status, errorCode: record?.errorCode }, { status: 503, errorCode: 'drain_timeout' }, 'recorded as cut at the drain timeout');
});

t.test('close() ends an idle h2c session with GOAWAY(NO_ERROR), one with a stream in flight with INTERNAL_ERROR', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, { handler: (stream, headers) => (headers[':path'] === '/hang' ? stream.on('error', () => {}) : stream.respond({ ':status': 200 }, { endStream: true })) });
  t.teardown(() => upstream.close());
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 60_000 }]);
  const idle = http2.connect(`http://127.0.0.1:${fx.port}`);
  const busy = http2.connect(`http://127.0.0.1:${fx.port}`);
  const goaways = new Map<string, number>();
  const errors: string[] = [];
  for (const [name, session] of [['idle', idle], ['busy', busy]] as const) {
    session.on('goaway', (code: number) => goaways.set(name, code));
    session.on('error', () => errors.push(name));
    t.teardown(() => session.destroy());
  }
  t.equal((await h2cRequest(idle, { ':path': '/' })).status, 200, 'the idle session served a request first');
  const hanging = h2cRequest(busy, { ':path': '/hang' }).catch(() => 'failed');
  for (let i = 0; i < 500 && fx.outbound.inFlight !== 1; i++) await sleep(10);
  t.equal(fx.outbound.inFlight, 1, 'a request in flight on the other');
  await fx.close();
  t.equal(await hanging, 'failed', 'the cut stream fails');
  // Node's client emits a session's 'error' as it closes
  for (let i = 0; i < 500 && !(idle.closed && busy.closed && idle.destroyed && busy.destroyed); i++) await sleep(10);
  t.same(Object.fromEntries(goaways), { idle: http2.constants.NGHTTP2_NO_ERROR, busy: http2.constants.NGHTTP2_INTERNAL_ERROR });
  t.same(errors, ['busy'], 'only the session whose stream was cut has an error');
});

t.test('close() stops at once', async (t) => {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(() => upstream.close());
  t.equal((await request(fx.port)).status, 200);
  await fx.close();
  t.ok(await connectRefused(fx.port), 'the listener is gone');
  await waitUntil(() => upstream.sessions.size === 0, 'the upstream sessions to close');
  t.equal(upstream.sessions.size, 0, 'and the upstream sessions');
  t.equal(fx.observer.sessions.get('payments'), 0, 'the sessions gauge is back to 0');
});

// an answer whose head went out and whose end did not, cut at the drain timeout: it was recorded
// as a plain success (status 200, no error), so a rollout that cuts streaming answers showed no
// error at all (a hunt of the outbound's h2c listener). Both app protocols.
t.test('an answer begun and cut by a drain that times out is recorded with its status and drain_timeout', async (t) => {
  const pki = await makePki(TD);
  // the head and a first part, then nothing: the answer never ends
  const upstream = await startUpstream(pki, {
    handler: (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200 });
      stream.write('first part;');
    },
  });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], timeoutMs: 60_000 }]);
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const http1Head = new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: fx.port, path: '/part/http1', headers: { host: 'payments' }, agent: false }, (res) => {
      res.on('error', () => {});
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  const h2c = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => h2c.destroy());
  h2c.on('error', () => {});
  const stream = h2c.request({ ':path': '/part/h2c', host: 'payments' });
  stream.on('error', () => {});
  stream.resume();
  const [h2cHead] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
  t.equal(await http1Head, 200, 'the HTTP/1.1 app has its head');
  t.equal(h2cHead[':status'], 200, 'the h2c app has its head');
  await fx.outbound.drain(300);
  const records = await fx.observer.waitForRequests(2);
  t.same(
    records.map((r) => [r.path, r.status, r.errorCode]).sort(),
    [
      ['/part/h2c', 200, 'drain_timeout'],
      ['/part/http1', 200, 'drain_timeout'],
    ],
    'each recorded with the status of its head and the cut',
  );
});
