// The own HTTP/1.1 client toward the app (src/inbound/app-pool.ts, app-connection.ts) where a
// review found it wanting, each against a raw TCP app on loopback: a connection released while
// its reading was paused for a slow caller must not hand bytes the app sent later to the next
// caller; a handler that throws inside llhttp's callbacks fails its request, not the process;
// an app that never completes the TCP handshake fails the request after the connect timeout
// (503 upstream_unavailable), not after the kernel's two minutes; a request cancelled while it
// waited leaves the connection it was given in the pool; a method, target or field name that
// would not stay one request is never written; an app's short Keep-Alive hint closes its
// connection on time though a later timer was armed; a closed pool is upstream_unavailable.
// Apps and the recording handler: test/helpers/app-client.ts.

import net from 'node:net';
import { spawn } from 'node:child_process';
import t from 'tap';
import { AppPool } from '../../src/inbound/app-pool.js';
import { classifyAppError } from '../../src/inbound/app-errors.js';
import { RecordingHandler, exchange, get, settled, startHeadApp } from '../helpers/app-client.js';
import { waitFor } from '../helpers/mesh.js';

/** A handler with a bug: it throws from one of its callbacks. */
class ThrowingHandler extends RecordingHandler {
  constructor(private readonly where: 'onHeaders' | 'onData') {
    super();
  }

  override onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>, resume: () => void): boolean {
    super.onHeaders(statusCode, rawHeaders, resume);
    if (this.where === 'onHeaders') throw new Error('a handler bug in onHeaders');
    return true;
  }

  override onData(chunk: Buffer): boolean {
    super.onData(chunk);
    if (this.where === 'onData') throw new Error('a handler bug in onData');
    return true;
  }
}

t.test("bytes an app sends after an answer a slow caller paused never reach the next caller", async (t) => {
  const app = await startHeadApp((path, { socket }) => {
    if (path === '/a') {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
      // later, on the idle connection: an answer meant for nobody (an app bug)
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\nFOR-CALLER-A-ONLY!'), 50);
    } else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nB!');
  });
  const pool = new AppPool({ host: '127.0.0.1', port: app.port, maxConnections: 1 });
  t.teardown(async () => {
    pool.close();
    await app.close();
  });
  // the caller's side is full at the answer's last byte: the client pauses reading
  const a = new RecordingHandler();
  a.paused = true;
  await exchange(pool, get('/a'), a);
  t.same([a.calls.at(-1), a.body], ['complete', 'hello']);
  // the stray answer has reached the sidecar's side by the time the first connection is seen closed
  await waitFor(async () => app.connections[0]?.closed === true, 3000, 'the connection the stray bytes came on is closed');
  const b = await exchange(pool, get('/b'));
  t.equal(b.body, 'B!', "the next caller gets its own answer, not the stray bytes");
  t.equal(app.connections.length, 2, 'on a new connection');
});

t.test('a handler that throws inside the parser fails its request, not the process', async (t) => {
  const app = await startHeadApp((_path, { socket }) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'));
  const pool = new AppPool({ host: '127.0.0.1', port: app.port });
  t.teardown(async () => {
    pool.close();
    await app.close();
  });
  for (const where of ['onHeaders', 'onData'] as const) {
    const handler = await exchange(pool, get(`/${where}`), new ThrowingHandler(where));
    t.equal(handler.calls.at(-1), 'error', `thrown in ${where}: the request fails`);
    t.match(handler.error?.message, `a handler bug in ${where}`);
  }
  // the pool still serves
  t.equal((await exchange(pool, get('/after'))).calls.at(-1), 'complete');
});

t.test('an app that never completes the handshake fails the request after the connect timeout', async (t) => {
  // a listener whose accept queue is full: the kernel drops further SYNs, as for a host that is down
  const listener = spawn('python3', ['-c', 'import socket,time\ns=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0); print(s.getsockname()[1], flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => listener.kill());
  const port = Number(await new Promise<string>((resolve) => listener.stdout.once('data', (data) => resolve(String(data).trim()))));
  const fillers = [0, 1, 2].map(() => net.connect(port, '127.0.0.1').on('error', () => undefined));
  t.teardown(() => fillers.forEach((filler) => filler.destroy()));
  // backlog 0 holds one connection: once one filler is in, the queue is full
  await waitFor(async () => fillers.some((filler) => !filler.connecting), 3000, 'the accept queue is full');
  const pool = new AppPool({ host: '127.0.0.1', port, connectTimeoutMs: 400 });
  t.teardown(() => pool.close());
  const started = Date.now();
  const handler = new RecordingHandler();
  pool.dispatch(get('/'), handler);
  // bounded: without a connect timeout the kernel retries its SYN for about two minutes
  await settled(handler);
  t.equal(handler.calls.at(-1), 'error');
  const tookMs = Date.now() - started;
  t.equal(handler.error?.code, 'ETIMEDOUT');
  t.ok(tookMs >= 350 && tookMs < 3000, `after the connect timeout (${tookMs} ms)`);
  t.equal(classifyAppError(handler.error).code, 'upstream_unavailable', 'answered 503 upstream_unavailable');
});

t.test('a request cancelled while it waited leaves its connection in the pool', async (t) => {
  const app = await startHeadApp((_path, { socket }) => setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 20));
  const pool = new AppPool({ host: '127.0.0.1', port: app.port, maxConnections: 2 });
  t.teardown(async () => {
    pool.close();
    await app.close();
  });
  const busy = [new RecordingHandler(), new RecordingHandler()];
  for (const handler of busy) pool.dispatch(get('/busy'), handler);
  // cancelled while queued: the forwarder aborts when the connection is handed to it
  for (let i = 0; i < 10; i++) pool.dispatch(get('/gone'), new RecordingHandler({ connect: (abort) => abort() }));
  const last = await exchange(pool, get('/last'));
  t.equal(last.calls.at(-1), 'complete');
  await Promise.all(busy.map((handler) => settled(handler)));
  t.same(busy.map((handler) => handler.calls.at(-1)), ['complete', 'complete']);
  t.equal(app.connections.length, 2, 'the two connections carried everything');
  t.ok(
    app.connections.every((connection) => !connection.received.includes('/gone')),
    'no cancelled request was written',
  );
});

t.test('a method, target or field name that would not stay one request is never written', async (t) => {
  const app = await startHeadApp((_path, { socket }) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const pool = new AppPool({ host: '127.0.0.1', port: app.port, maxConnections: 1 });
  t.teardown(async () => {
    pool.close();
    await app.close();
  });
  const refused = [
    { method: 'GET', path: '/a HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /b', headers: ['host', 'app'] },
    { method: 'GET\r\n\r\nGET', path: '/', headers: ['host', 'app'] },
    { method: 'G T', path: '/', headers: ['host', 'app'] },
    { method: 'GET', path: '/a\u0000', headers: ['host', 'app'] },
    { method: 'GET', path: '/', headers: ['host', 'app', 'x-a:\r\nx-b', 'v'] },
    { method: 'GET', path: '/', headers: ['host', 'app', 'x-a', 'v\r\nx-injected: 1'] },
    { method: 'GET', path: '/', headers: ['host', 'app', 'x-a', ['ok', 'v\nx']] },
  ];
  for (const request of refused) {
    const handler = await exchange(pool, request);
    t.equal(handler.error?.code, 'APP_INVALID_FIELD', JSON.stringify(request));
  }
  t.equal((await exchange(pool, get('/fine'))).calls.at(-1), 'complete');
  const written = app.connections.map((connection) => connection.received.toString('latin1')).join('');
  t.equal(written.split('HTTP/1.1\r\n').length - 1, 1, 'one request reached the app: the fine one');
  t.notMatch(written, /injected/);
});

t.test("an app's short Keep-Alive hint closes its connection on time, a longer timer armed or not", async (t) => {
  const app = await startHeadApp((path, { socket }) => {
    // /first is answered (and its connection idled, arming the 30 s timer) before /second
    const second = path === '/second';
    const hint = second ? 'Keep-Alive: timeout=2\r\n' : '';
    setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\n${hint}Content-Length: 2\r\n\r\nok`), second ? 100 : 0);
  });
  const pool = new AppPool({ host: '127.0.0.1', port: app.port, idleTimeoutMs: 30_000 });
  t.teardown(async () => {
    pool.close();
    await app.close();
  });
  // two at once: two connections; the first answer arms the 30 s timer, the second's hint says 2 s
  await Promise.all([exchange(pool, get('/first')), exchange(pool, get('/second'))]);
  const hinted = app.connections.find((connection) => connection.received.includes('/second'));
  const started = Date.now();
  await waitFor(async () => hinted?.closed === true, 5000, 'the hinted connection is closed');
  const tookMs = Date.now() - started;
  t.ok(tookMs < 2500, `closed a second before the app's 2 s (${tookMs} ms)`);
  t.notOk(app.connections.find((connection) => connection.received.includes('/first'))?.closed, 'the other stays for its 30 s');
});

t.test('a closed pool is upstream_unavailable, not the app closing a connection', async (t) => {
  const app = await startHeadApp(() => undefined); // never answers
  const pool = new AppPool({ host: '127.0.0.1', port: app.port, maxConnections: 1 });
  t.teardown(() => app.close());
  const waiting = new RecordingHandler();
  pool.dispatch(get('/in-flight'), new RecordingHandler());
  pool.dispatch(get('/waiting'), waiting);
  pool.close();
  await settled(waiting);
  t.same(classifyAppError(waiting.error), { code: 'upstream_unavailable', message: 'the sidecar is closing its connections to the app' });
});
