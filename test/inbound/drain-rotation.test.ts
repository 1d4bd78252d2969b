// Graceful drain (in-flight requests finish, new connections are refused, HTTP/2 sessions get
// GOAWAY, HTTP/1.1 responses carry Connection: close, stragglers are cut at the timeout) and
// certificate rotation under live connections.

import t from 'tap';
import https from 'node:https';
import tls from 'node:tls';
import { once } from 'node:events';
import type { TLSSocket } from 'node:tls';
import { validateSvid } from '../../src/identity/svid.js';
import { h1Request, h2Connect, h2Request, SERVER_ID, startInbound, type Http1Handler } from '../helpers/inbound-fixture.js';

const slowApp: Http1Handler = (req, res) => {
  if (req.url === '/begun') {
    // an answer that has begun and never ends
    res.writeHead(200, { 'content-type': 'text/plain' }).write('part of it');
    return;
  }
  const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
  req.resume();
  setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(`done after ${delay}`), delay).unref();
};

/** Resolves once `check` holds, polling; fails the test after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function connectError(port: number, options: tls.ConnectionOptions): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options }, () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

t.test('drain lets in-flight requests finish and refuses new work', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: slowApp } });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();

  const idleAgent = new https.Agent({ keepAlive: true, ...tlsOptions } as https.AgentOptions);
  t.teardown(() => idleAgent.destroy());
  t.equal((await h1Request(fx.port, tlsOptions, { path: '/', agent: idleAgent })).status, 200);
  const idleSocket = Object.values(idleAgent.freeSockets)[0]?.[0];
  t.ok(idleSocket, 'an idle keep-alive connection is open');
  const idleClosed = idleSocket ? once(idleSocket, 'close') : Promise.resolve();

  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.destroy());
  const goaway = once(session, 'goaway');

  const h1Slow = h1Request(fx.port, tlsOptions, { path: '/slow?ms=600' });
  const h2Slow = h2Request(session, { ':path': '/slow?ms=600' });
  await until(() => fx.inbound.inFlight === 2, 'both requests at the app');
  const work = Promise.all([h1Slow, h2Slow]);

  const started = Date.now();
  const drained = fx.inbound.drain(5000);
  t.ok(fx.inbound.draining);
  // GOAWAY and the idle connection's close come at once: before the requests in flight end
  const first = await Promise.race([Promise.all([goaway, idleClosed]).then(() => 'told'), work.then(() => 'work finished')]);
  t.equal(first, 'told', 'the HTTP/2 session got GOAWAY and the idle HTTP/1.1 connection was closed while requests were still in flight');
  t.equal(await connectError(fx.port, tlsOptions), 'ECONNREFUSED', 'new connections are refused');

  const [r1, r2] = await work;
  t.equal(r1.status, 200);
  t.equal(r1.body, 'done after 600', 'the HTTP/1.1 request completed');
  t.equal(r1.headers.connection, 'close', 'with Connection: close');
  t.equal(r2.status, 200);
  t.equal(r2.body.toString(), 'done after 600', 'the HTTP/2 request completed');
  await drained;
  const took = Date.now() - started;
  t.ok(took < 2000, `drain finished when the work did (${took} ms), not at the timeout`);
  t.equal(fx.inbound.inFlight, 0);
  t.equal(fx.inbound.connections, 0);
});

t.test('drain cuts what is still running at the timeout, and records it as cut', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: slowApp }, timeoutMs: 10_000 });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const settle = (p: Promise<{ status: number }>) => p.then((r) => `answered ${r.status}`, (err: Error) => `failed: ${err.message}`);
  const stuck = settle(h1Request(fx.port, tlsOptions, { path: '/slow?ms=5000' }));
  const begun = settle(h1Request(fx.port, tlsOptions, { path: '/begun' }));
  await until(() => fx.inbound.inFlight === 2, 'both requests at the app');
  const started = Date.now();
  await fx.inbound.drain(300);
  const took = Date.now() - started;
  t.ok(took >= 280 && took < 1500, `drain returned at its timeout (${took} ms)`);
  t.match(await stuck, /^failed/, 'the straggler was cut off');
  t.match(await begun, /^failed/, 'so was the answer under way');
  // the sidecar cut them: not the caller leaving (499, reset), which is what they used to read as
  const records = (await fx.observer.waitForRequests(2)).map((r) => ({ path: r.path, status: r.status, errorCode: r.errorCode }));
  t.same(
    records.sort((a, b) => a.path.localeCompare(b.path)),
    [
      { path: '/begun', status: 200, errorCode: 'drain_timeout' },
      { path: '/slow', status: 503, errorCode: 'drain_timeout' },
    ],
    'each recorded as cut at the drain timeout: 503 if unanswered, its status if the answer had begun',
  );
});

t.test('an HTTP/1.1 caller that keeps its side open after the close does not hold the drain', async (t) => {
  // Many client pools read nothing from an idle connection, so they notice the sidecar's FIN
  // only at its next use: the drain used to wait for their close, up to the drain timeout,
  // with nothing in flight. Raw TLS sockets with allowHalfOpen stand in for such callers: one
  // idle at the drain, one whose answer began before it (no `Connection: close`) and ends during it.
  const headFirst: Http1Handler = (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).write('begun ');
    setTimeout(() => res.end('and ended'), 300).unref();
  };
  const fx = await startInbound({ app: { protocol: 'http', handler: headFirst } });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const open = async (path: string): Promise<TLSSocket> => {
    const socket = tls.connect({ host: '127.0.0.1', port: fx.port, ...tlsOptions, ALPNProtocols: ['http/1.1'], allowHalfOpen: true });
    t.teardown(() => socket.destroy());
    socket.on('error', () => {});
    socket.resume(); // reads the answer and the FIN (readableEnded), never closes its own side
    await once(socket, 'secureConnect');
    socket.write(`GET ${path} HTTP/1.1\r\nhost: orders\r\n\r\n`);
    return socket;
  };
  const idle = await open('/');
  await once(idle, 'data'); // its answer
  await until(() => fx.inbound.inFlight === 0, 'the first answer ended');
  const busy = await open('/');
  await once(busy, 'data'); // the head of its answer
  const started = Date.now();
  await fx.inbound.drain(5000);
  const took = Date.now() - started;
  t.ok(took < 2000, `drain finished once the answer ended (${took} ms), not at the 5 s timeout`);
  t.equal(fx.inbound.connections, 0, 'both connections closed');
  await until(() => idle.readableEnded && busy.readableEnded, 'each caller told with a FIN');
  t.pass('each caller was told with a FIN');
});

t.test('rotation: new handshakes get the new certificate, an open HTTP/2 session keeps working', async (t) => {
  const fx = await startInbound({ app: { protocol: 'http', handler: slowApp } });
  t.teardown(() => fx.close());
  const tlsOptions = await fx.tlsOptions();
  const oldSerial = fx.identity.current().serialHex;

  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  const serialOf = (socket: TLSSocket) => socket.getPeerX509Certificate()?.serialNumber.toLowerCase();
  t.equal(serialOf(session.socket as TLSSocket), oldSerial);
  t.equal((await h2Request(session, { ':path': '/' })).status, 200);

  const next = validateSvid(await fx.pki.issue(SERVER_ID), SERVER_ID);
  fx.identity.swap(next);
  t.not(next.serialHex, oldSerial);

  const fresh = await new Promise<string | undefined>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: fx.port, ALPNProtocols: ['h2'], ...tlsOptions }, () => {
      resolve(serialOf(socket));
      socket.destroy();
    });
    socket.on('error', reject);
  });
  t.equal(fresh, next.serialHex, 'a new handshake presents the new certificate');
  const fresh2 = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => fresh2.close());
  t.equal((fresh2.socket as TLSSocket).alpnProtocol, 'h2', 'ALPN still offered after the swap');
  t.equal((await h2Request(fresh2, { ':path': '/' })).status, 200);

  t.equal((await h2Request(session, { ':path': '/?after=rotation' })).status, 200, 'the session opened on the old certificate still serves');
  t.notOk(session.closed || session.destroyed, 'and is still open');
  t.equal((await h1Request(fx.port, tlsOptions)).status, 200, 'HTTP/1.1 callers too');
});
