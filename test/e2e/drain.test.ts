// Shutdown as an orchestrator does it (SIGTERM): /ready turns 503, listeners stop accepting,
// in-flight requests finish, the process exits 0; the outbound side keeps serving its app
// while it drains.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSidecar, httpGet, waitFor } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

t.test('inbound: in-flight requests finish, new connections are refused, exit 0 as soon as they have', async (t) => {
  // a drain timeout far beyond the work: a drain that waited for it would be seen
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}`, timeout: '10s' }, drainTimeout: '30s' });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders', timeout: '10s' }] });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  t.equal((await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } })).status, 200, 'the session is up');

  // held at the app until the drain has been seen to refuse new connections
  const slow = request(frontend.outboundPort, { path: '/slow?hold', headers: { host: 'orders', 'x-request-id': 'drain-slow' } });
  await waitFor(async () => mesh.app.seen.some((h) => h['x-request-id'] === 'drain-slow'), 10_000, 'the slow request at the app');
  const exited = orders.process.exited();
  const seen = orders.process.lines.length;
  orders.process.child.kill('SIGTERM');
  await orders.process.waitFor((line) => orders.process.lines.indexOf(line) >= seen && line.msg === 'inbound draining');
  const ready = await orders.admin('/ready').catch(() => ({ status: 0, body: '' }));
  t.equal(ready.status, 503, '/ready says 503 while draining');
  // a reload asked for now has nothing to apply to that will last: refused, said so, nothing run
  const reload = await fetch(`http://127.0.0.1:${orders.adminPort}/reload`, { method: 'POST' });
  const refusal = (await reload.json()) as { error: string; message: string };
  t.equal(reload.status, 503, 'POST /reload while draining: 503');
  t.match(refusal, { error: 'reload_aborted', message: /draining/ }, 'the reason is the drain');
  await orders.process.waitFor((line) => /reload asked for while draining/.test(String(line.msg)));
  t.pass('the refusal is logged');
  t.notOk(orders.process.lines.some((line) => /^config reload(ed$| failed| aborted)/.test(String(line.msg))), 'no reload ran (none logged)');
  t.ok(await refused(orders.inboundPort), 'the inbound listener no longer accepts');
  t.equal(orders.process.child.exitCode, null, 'still running while the request is in flight');
  mesh.app.release('drain-slow');
  const answer = await slow;
  const answeredAt = Date.now();
  t.equal(answer.status, 200, 'the in-flight request finished');
  t.equal(answer.body.toString(), 'late');
  t.equal(await exited, 0, 'exit 0 after draining');
  const after = Date.now() - answeredAt;
  t.ok(after < 5000, `exited ${after} ms after the last request finished, not at the 30 s drain timeout`);
});

t.test('outbound keeps serving the app while the sidecar drains', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  // a drain timeout far beyond the work: a drain that waited for it would be seen
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], drainTimeout: '30s' });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  const exited = frontend.process.exited();
  const seen = frontend.process.lines.length;
  frontend.process.child.kill('SIGTERM');
  await frontend.process.waitFor((line) => frontend.process.lines.indexOf(line) >= seen && line.msg === 'draining');
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    if (i > 0) await sleep(150); // the app calls now and then, never quiet for the sidecar's 1 s
    statuses.push((await request(frontend.outboundPort, { path: '/headers', headers: { host: 'orders' } })).status);
  }
  const lastCall = Date.now();
  t.same(statuses, [200, 200, 200, 200, 200, 200], 'calls made after SIGTERM still succeed');
  t.equal((await httpGet(frontend.adminPort, '/ready').catch(() => ({ status: 0 }))).status, 503);
  t.equal(await exited, 0, 'exits once the app has gone quiet');
  const quietFor = Date.now() - lastCall;
  t.ok(quietFor >= 800, `not before the app had been quiet for about 1 s (${quietFor} ms)`);
  t.ok(quietFor < 5000, `and soon after, not at the 30 s drain timeout (${quietFor} ms)`);
});

/**
 * Three loops of 300 ms calls through `port` back to back, until one is refused before it is sent
 * (the listener closed), or 10 s; `signal` is called 400 ms in. The outcomes of the calls sent
 * after it: 'ok', 'refused', 'unaccepted' (below), or what else happened.
 *
 * A loop's last call before its refusal may meet a reset that is no sidecar's doing: a connection
 * the kernel had completed but the sidecar not yet taken when its listener closed is reset by the
 * kernel (the accept-queue race of any server closing a listener; a clean-clone CI run: one call,
 * 9 ms after it was sent). Such a call never reached the app, and it is its loop's last before the
 * refusal: 'unaccepted'. A call cut in flight had reached the app (these take 300 ms there), so it
 * still fails the test. A connection the sidecar took and then closed unread would look the same
 * from here: that the drain answers those is tested below, with raw connections ('with nothing in
 * flight, a taken connection ...').
 */
async function callsAcrossSignal(port: number, appSaw: (id: string) => boolean, signal: () => void): Promise<string[]> {
  const outcomes: string[] = [];
  let signalled = 0;
  let calls = 0;
  const loop = async (): Promise<void> => {
    let last: { id: string; outcome: string; at: number } | undefined;
    for (const until = Date.now() + 10_000; Date.now() < until; ) {
      const sent = Date.now();
      const id = `across-${++calls}`;
      const outcome = await request(port, { path: '/slow?ms=300', headers: { host: 'orders', 'x-request-id': id } }).then(
        (res) => (res.status === 200 ? 'ok' : `status ${res.status} ${res.body.toString()}`),
        (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? 'refused' : `${err.code ?? err.message} after ${Date.now() - sent} ms`),
      );
      if (outcome === 'refused' && last?.outcome.startsWith('ECONNRESET') && !appSaw(last.id)) outcomes[last.at] = 'unaccepted';
      if (signalled > 0 && sent >= signalled) {
        last = { id, outcome, at: outcomes.push(outcome) - 1 };
      }
      if (outcome === 'refused') return;
    }
  };
  const loops = Promise.all([loop(), loop(), loop()]);
  await sleep(400);
  signalled = Date.now();
  signal();
  await loops;
  return outcomes;
}

// An app that never went quiet had the whole drain timeout spent waiting for it, then every call
// in flight cut at once (review: 17 at a 5 s timeout, POSTs the upstream had run among them).
// A quarter of the timeout is kept for the wind-down: the listener closes, the calls in flight
// finish, and the app's next calls are refused before they are sent.
t.test('outbound: an app that never goes quiet has its calls in flight finish at the drain timeout, none cut', async (t) => {
  const { frontend, exited } = await frontendDrainingIn3s(t);
  const appSaw = (id: string): boolean => mesh.app.seen.some((h) => h['x-request-id'] === id);
  const outcomes = await callsAcrossSignal(frontend.outboundPort, appSaw, () => frontend.process.child.kill('SIGTERM'));
  t.same(outcomes.filter((o) => o !== 'ok' && o !== 'refused' && o !== 'unaccepted'), [], `no call cut or failed (${outcomes.filter((o) => o === 'ok').length} succeeded after SIGTERM)`);
  t.ok(outcomes.filter((o) => o === 'ok').length >= 12, 'the calls made while the sidecar waited for the app to go quiet were served');
  t.equal(await exited, 0, 'exits 0');
});

// A connection the app opened just before the wind-down, its request not yet read, was closed
// with the idle ones: the call met a reset (a CI run: 2 of 21 calls, 8 ms after they were sent).
// It is answered, with Connection: close, as a call in flight is.
t.test('outbound: a connection opened before the wind-down whose request comes after it is answered, not reset', async (t) => {
  const { frontend, exited } = await frontendDrainingIn3s(t);
  // a call in flight past the wind-down (at 2.25 s: a quarter of 3 s kept) holds the drain open
  const slow = request(frontend.outboundPort, { path: '/slow?ms=2600', headers: { host: 'orders' } });
  const early = await rawConnection(frontend.outboundPort);
  frontend.process.child.kill('SIGTERM');
  await untilRefused(frontend.outboundPort);
  early.socket.write('GET /headers HTTP/1.1\r\nHost: orders\r\n\r\n');
  t.equal(await early.ended, 'close', 'the early connection ends cleanly');
  t.match(early.answer(), /^HTTP\/1\.1 200 /, 'its request, sent after the wind-down, is answered');
  t.match(early.answer(), /\r\nconnection: close\r\n/i, 'with Connection: close');
  t.equal((await slow).status, 200, 'the call in flight finishes');
  t.equal(await exited, 0, 'exits 0');
});

// With nothing in flight the drain ended at once, and the stop closed a connection taken before
// the listener closed whose request was still coming: the call met a reset, its request unread
// (a review: a head sent in two parts around SIGTERM; 3 of 9 resets across 12 drains under load).
// The drain waits a moment (FIRST_REQUEST_WAIT_MS) for such a connection's first request.
t.test('outbound: with nothing in flight, a taken connection whose request is still coming is answered before the exit', async (t) => {
  const { frontend, exited } = await frontendDrainingIn3s(t);
  const halfHead = await rawConnection(frontend.outboundPort);
  halfHead.socket.write('GET /headers HTTP/1.1\r\nHost: orders\r\n');
  const silent = await rawConnection(frontend.outboundPort);
  frontend.process.child.kill('SIGTERM');
  // the drain under way: nothing in flight, the listener closed
  await untilRefused(frontend.outboundPort);
  halfHead.socket.write('x-request-id: drain-half-head\r\n\r\n');
  silent.socket.write('GET /headers HTTP/1.1\r\nHost: orders\r\nx-request-id: drain-silent\r\n\r\n');
  for (const [name, connection] of [['a head sent in two parts', halfHead], ['a request sent after the listener closed', silent]] as const) {
    t.equal(await connection.ended, 'close', `${name}: the connection ends cleanly`);
    t.match(connection.answer(), /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n/i, `${name}: answered 200, with Connection: close`);
  }
  t.equal(await exited, 0, 'exits 0');
});

// The same for an h2c connection taken before the listener closed whose preface comes after:
// its first stream is answered, and its session gets GOAWAY as the sessions open at the
// wind-down did (no further streams on a sidecar about to exit).
t.test('outbound: an h2c connection taken before the listener closed, its preface after, is answered and told GOAWAY', async (t) => {
  const { frontend, exited } = await frontendDrainingIn3s(t);
  const taken = await rawConnection(frontend.outboundPort);
  frontend.process.child.kill('SIGTERM');
  await untilRefused(frontend.outboundPort);
  const session = http2.connect(`http://orders`, { createConnection: () => taken.socket });
  session.on('error', () => undefined);
  const seen: string[] = [];
  session.on('goaway', (code: number) => seen.push(`goaway ${code}`));
  // its first stream a moment after the preface, as a pooled client or grpc-js sends it: the
  // session had stopped counting as waiting for one once its preface was read (a re-review: 6
  // of 7 such streams refused or cut). The pause is the client's, within the drain's 0.5 s.
  await once(session, 'remoteSettings');
  await sleep(100);
  const stream = session.request({ ':path': '/headers', ':authority': 'orders' });
  const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
  seen.push('answer');
  stream.resume();
  await once(stream, 'end');
  t.equal(headers[':status'], 200, 'its first stream is answered');
  // told as soon as its first stream is in, not only when the process closes it at the exit
  t.same(seen, [`goaway ${http2.constants.NGHTTP2_NO_ERROR}`, 'answer'], 'and its session is told GOAWAY (NO_ERROR) before the answer');
  session.close();
  t.equal(await exited, 0, 'exits 0');
});

/** orders (inbound to the app) and frontend (outbound to orders, drainTimeout 3 s), stopped at the test's end; frontend's exit. */
async function frontendDrainingIn3s(t: Tap.Test) {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  const frontend = await startSidecar(mesh.ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }], drainTimeout: '3s' });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop()]));
  return { frontend, exited: frontend.process.exited() };
}

/** A raw connection to `port`, once connected: what it was answered, and how it ended. */
async function rawConnection(port: number): Promise<{ socket: net.Socket; answer: () => string; ended: Promise<string> }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  const ended = new Promise<string>((done) => {
    socket.on('error', (err: NodeJS.ErrnoException) => done(`error ${err.code}`));
    socket.on('close', () => done('close'));
  });
  return { socket, answer: () => answer, ended };
}

/** Until the listener at `port` refuses connections (the wind-down closed it), at most 5 s. */
async function untilRefused(port: number): Promise<void> {
  const by = Date.now() + 5000;
  while (Date.now() < by && !(await refused(port))) await sleep(5);
}

// A call the inbound side still serves late in the drain may need the outbound: its app calls
// out to answer it. The outbound winds down at its time (a quarter of the timeout left) but
// keeps its listener open until the inbound side is done (closing it there refused the app's
// call: review, 502 to a call 0.5 s before its drain's end).
t.test('outbound: a call the inbound still serves late in the drain can call out through it', async (t) => {
  const orders = await startSidecar(mesh.ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${mesh.app.port}` } });
  let outboundPort = 0;
  let reached: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => (reached = resolve));
  // frontend's app: answers each call by calling orders through its sidecar 2.5 s later
  const app = http.createServer((_req, res) => {
    reached();
    setTimeout(() => {
      request(outboundPort, { path: '/headers', headers: { host: 'orders' } }).then(
        (up) => res.end(`upstream ${up.status}`),
        (err: NodeJS.ErrnoException) => res.writeHead(502).end(`outbound failed: ${err.code ?? err.message}`),
      );
    }, 2_500);
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const frontend = await startSidecar(mesh.ca, {
    service: 'frontend',
    inbound: { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}` },
    upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }],
    drainTimeout: '3s',
  });
  outboundPort = frontend.outboundPort;
  const caller = await startSidecar(mesh.ca, { service: 'caller', upstreams: [{ name: 'frontend', endpoints: [`127.0.0.1:${frontend.inboundPort}`], identity: 'spiffe://mesh.local/svc/frontend' }] });
  t.teardown(() => Promise.all([frontend.stop('SIGKILL'), orders.stop(), caller.stop(), new Promise((done) => app.close(done))]));
  const exited = frontend.process.exited();
  const answer = request(caller.outboundPort, { path: '/', headers: { host: 'frontend' } });
  await arrived;
  frontend.process.child.kill('SIGTERM');
  const res = await answer;
  t.equal(`${res.status} ${res.body.toString()}`, '200 upstream 200', 'its app called out 2.5 s into a 3 s drain, after the wind-down began, and answered');
  t.equal(await exited, 0, 'exits 0');
});
