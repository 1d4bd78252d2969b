// meshcar's own pool of connections to an HTTP/1.1 app (src/inbound/app-pool.ts), driven
// directly against apps on 127.0.0.1: keep-alive reuse with the most recently released
// connection first (LIFO), the connection cap with waiting requests served in the order they
// came, idle connections closed by the pool (its own timeout, or the app's Keep-Alive hint
// less 1 s), abort() of a request mid-answer or still waiting, and close().

import t from 'tap';
import { AppPool } from '../../src/inbound/app-pool.js';
import { RecordingHandler, exchange, get, settled, startHeadApp, startHttpApp, type TrackedApp } from '../helpers/app-client.js';
import { waitFor } from '../helpers/mesh.js';
import { movableClock } from '../helpers/movable-clock.js';

function poolFor(t: Tap.Test, app: TrackedApp, options: { maxConnections?: number; idleTimeoutMs?: number } = {}): AppPool {
  const pool = new AppPool({ host: '127.0.0.1', port: app.port, ...options });
  t.teardown(() => {
    pool.close();
    return app.close();
  });
  return pool;
}

const closedAtApp = (app: TrackedApp, index: number) => waitFor(async () => app.connections[index]?.closed === true, 5000, `the app seeing connection ${index + 1} close`);

t.test('keep-alive: sequential requests share one connection; after a burst the most recently released serves next', async (t) => {
  const held: Array<{ id: number; answer: () => void }> = [];
  let holding = false;
  // the answer names the connection it came on
  const app = await startHttpApp((_req, res, seen) => {
    const answer = () => res.end(String(seen.id));
    if (holding) held.push({ id: seen.id, answer });
    else answer();
  });
  const pool = poolFor(t, app);
  for (let i = 0; i < 20; i++) {
    const h = await exchange(pool, get(`/seq/${i}`));
    t.equal(h.status, 200);
  }
  t.equal(app.connections.length, 1, '20 sequential requests: one TCP connection');

  holding = true;
  const burst = [0, 1, 2].map((i) => {
    const h = new RecordingHandler();
    pool.dispatch(get(`/burst/${i}`), h);
    return h;
  });
  await waitFor(async () => held.length === 3, 5000, 'three requests held at the app');
  holding = false;
  t.equal(app.connections.length, 3, 'the burst opened two more connections');
  // released in the order 3, 1, 2: connection 2 is the most recently released
  for (const id of [3, 1, 2]) {
    held.find((h) => h.id === id)?.answer();
    await waitFor(async () => burst.some((h) => h.body === String(id) && h.done), 5000, `the answer on connection ${id}`);
  }
  for (let i = 0; i < 5; i++) {
    const h = await exchange(pool, get(`/after/${i}`));
    t.equal(h.body, '2', `request ${i} after the burst: on the most recently released connection`);
  }
  t.equal(app.connections.length, 3, 'no connection opened after the burst');
});

t.test('cap: 2 connections for 6 requests at once, the waiting ones served in the order they came', async (t) => {
  const held: Array<() => void> = [];
  const arrived: string[] = [];
  const app = await startHttpApp((req, res) => {
    arrived.push(req.url as string);
    held.push(() => res.end(req.url));
  });
  const pool = poolFor(t, app, { maxConnections: 2 });
  const handlers = [0, 1, 2, 3, 4, 5].map((i) => {
    const h = new RecordingHandler();
    pool.dispatch(get(`/${i}`), h);
    return h;
  });
  // each step answers the newest request: its connection takes the longest-waiting one
  for (let n = 2; n <= 6; n++) {
    await waitFor(async () => arrived.length >= n && held.length >= 2, 5000, `${n} requests at the app, two held`);
    t.equal(app.maxOpen, 2, `${n} arrived: never more than 2 connections at the app`);
    t.equal(held.length, 2, 'two requests at the app at once');
    if (n < 6) held.pop()?.();
  }
  for (const answer of held.splice(0)) answer();
  for (const h of handlers) await settled(h);
  t.same(arrived, ['/0', '/1', '/2', '/3', '/4', '/5'], 'the waiting requests reached the app in the order they were dispatched');
  t.same(
    handlers.map((h) => h.body),
    ['/0', '/1', '/2', '/3', '/4', '/5'],
    'all six answered',
  );
  t.equal(app.connections.length, 2);
});

// the idle deadline was a wall-clock time: a clock stepped back an hour (NTP, a resumed VM)
// while a connection sat idle kept it an hour past the pool's timeout and the app's hint
t.test('idle timeout: the wall clock stepped back an hour does not keep an idle connection', async (t) => {
  const app = await startHttpApp((_req, res, seen) => res.end(String(seen.id)));
  const pool = poolFor(t, app, { idleTimeoutMs: 300 });
  const clock = movableClock();
  t.teardown(() => clock.restore());
  const first = await exchange(pool, get('/'));
  t.equal(first.body, '1');
  // stepped once the connection is back among the idle ones (its deadline set)
  await waitFor(async () => (pool as unknown as { idle: unknown[] }).idle.length === 1, 5000, 'the connection idle in the pool');
  clock.offset.ms = -3_600_000;
  await closedAtApp(app, 0);
  // closedAt is read off the stepped clock, completedAt off the clock before the step
  const idleFor = (app.connections[0]?.closedAt ?? 0) + 3_600_000 - first.completedAt;
  t.ok(idleFor >= 250 && idleFor < 2000, `closed by the pool after its 300 ms (${idleFor} ms)`);
});

t.test('idle timeout: the pool closes an idle connection after idleTimeoutMs; the next request opens a new one', async (t) => {
  // node:http's server keeps an idle connection 5 s (and says so, Keep-Alive: timeout=5)
  const app = await startHttpApp((_req, res, seen) => res.end(String(seen.id)));
  const pool = poolFor(t, app, { idleTimeoutMs: 300 });
  const first = await exchange(pool, get('/'));
  t.equal(first.body, '1');
  await closedAtApp(app, 0);
  const idleFor = (app.connections[0]?.closedAt ?? 0) - first.completedAt;
  t.ok(idleFor >= 250 && idleFor < 2000, `closed by the pool after its 300 ms (${idleFor} ms), not by the app's 5 s`);
  const second = await exchange(pool, get('/'));
  t.equal(second.body, '2', 'a new connection');
});

t.test("the app's Keep-Alive hint, less 1 s: timeout=1 is not reused, timeout=3 closes after about 2 s", async (t) => {
  const app = await startHeadApp((path, seen) => seen.socket.write(`HTTP/1.1 200 OK\r\nKeep-Alive: timeout=${path === '/one' ? 1 : 3}\r\nContent-Length: 1\r\n\r\n${seen.id}`));
  const pool = poolFor(t, app, { idleTimeoutMs: 30_000 });
  t.equal((await exchange(pool, get('/one'))).body, '1');
  t.equal((await exchange(pool, get('/one'))).body, '2', 'timeout=1: the next request at once is on a new connection');
  await closedAtApp(app, 0);
  await closedAtApp(app, 1);

  const three = await exchange(pool, get('/three'));
  t.equal(three.body, '3');
  await closedAtApp(app, 2);
  const idleFor = (app.connections[2]?.closedAt ?? 0) - three.completedAt;
  t.ok(idleFor >= 1500 && idleFor <= 4000, `timeout=3: closed by the pool after ${idleFor} ms (about 2 s)`);
});

t.test('abort() mid-answer: no more handler calls, the connection closed; a waiting request aborted at its turn is never sent', async (t) => {
  const app = await startHeadApp((path, seen) => {
    if (path === '/slow') seen.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    else if (path === '/held') heldAnswer = () => seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld');
    else seen.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
  });
  let heldAnswer: (() => void) | undefined;
  const pool = poolFor(t, app, { maxConnections: 1 });

  const slow = new RecordingHandler();
  pool.dispatch(get('/slow'), slow);
  await waitFor(async () => slow.bytes === 5, 5000, 'the first piece of the answer');
  slow.abort?.();
  await closedAtApp(app, 0);
  // a request after it goes through the loop several times: a late call would have come by then
  t.equal((await exchange(pool, get('/after'))).body, '/after');
  t.equal(slow.shape, 'connect sent headers data', 'no call to the handler after abort()');

  const held = new RecordingHandler();
  pool.dispatch(get('/held'), held);
  await waitFor(async () => heldAnswer !== undefined, 5000, 'the held request at the app');
  // cancelled while it waits (as the forwarder's attempt does): the abort it is given when it
  // is queued takes it out of the queue
  const cancelled = new RecordingHandler({ connect: (abort) => abort() });
  pool.dispatch(get('/cancelled'), cancelled);
  heldAnswer?.();
  await settled(held);
  t.equal((await exchange(pool, get('/later'))).body, '/later');
  t.equal(cancelled.shape, 'connect', 'the cancelled request: its connection, then nothing');
  const lines = app.connections.flatMap((c) => c.lines);
  t.same(lines, ['GET /slow HTTP/1.1', 'GET /after HTTP/1.1', 'GET /held HTTP/1.1', 'GET /later HTTP/1.1'], 'the cancelled request never reached the app');
});

t.test('close(): waiting requests fail APP_POOL_CLOSED without being sent, every connection is closed', async (t) => {
  const app = await startHeadApp((path, seen) => {
    if (path === '/quick') seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    // anything else is held: it is in flight when the pool closes
  });
  const idlePool = poolFor(t, app);
  await exchange(idlePool, get('/quick'));
  idlePool.close();
  await closedAtApp(app, 0);
  t.pass('an idle connection is closed');

  const pool = poolFor(t, app, { maxConnections: 2 });
  const inFlight = [new RecordingHandler(), new RecordingHandler()];
  const waiting = [new RecordingHandler(), new RecordingHandler()];
  inFlight.forEach((h, i) => pool.dispatch(get(`/held/${i}`), h));
  waiting.forEach((h, i) => pool.dispatch(get(`/waiting/${i}`), h));
  await waitFor(async () => app.connections.filter((c) => c.lines.length > 0).length === 3, 5000, 'both held requests at the app');
  pool.close();
  for (const h of waiting) {
    t.equal(h.error?.code, 'APP_POOL_CLOSED', 'a waiting request fails at once');
    t.equal(h.shape, 'connect error', 'its cancel when it was queued, then the error');
  }
  await closedAtApp(app, 1);
  await closedAtApp(app, 2);
  for (const h of inFlight) {
    await settled(h);
    t.equal(h.error?.code, 'APP_CONNECTION_CLOSED', 'a request in flight fails: its connection is gone');
  }
  const late = new RecordingHandler();
  pool.dispatch(get('/late'), late);
  t.equal(late.error?.code, 'APP_POOL_CLOSED', 'a request after close() fails at once');
  t.same(
    app.connections.flatMap((c) => c.lines),
    ['GET /quick HTTP/1.1', 'GET /held/0 HTTP/1.1', 'GET /held/1 HTTP/1.1'],
    'no waiting request reached the app',
  );
});
