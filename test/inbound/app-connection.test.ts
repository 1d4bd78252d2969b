// One connection of meshcar's own HTTP/1.1 client toward the app (src/inbound/app-connection.ts,
// app-request-head.ts, app-request-body.ts), driven through its pool against raw TCP apps on
// 127.0.0.1, byte for byte: the framing it writes (none for a bodiless GET, Content-Length: 0
// for a bodiless POST, the caller's length held to the bytes, chunked otherwise), the answers
// it reads (lengths, chunks with trailers, close-delimited, HEAD, 204/304, 1xx skipped, long
// heads, malformed ones), stray bytes and early answers closing the connection, and
// backpressure both ways.

import { PassThrough, Readable } from 'node:stream';
import t from 'tap';
import { AppPool } from '../../src/inbound/app-pool.js';
import { RecordingHandler, exchange, get, settled, startHeadApp, startTcpApp, type SeenConnection, type TrackedApp } from '../helpers/app-client.js';
import type { AppRequest } from '../../src/inbound/app-dispatch.js';
import { waitFor } from '../helpers/mesh.js';

function poolFor(t: Tap.Test, app: TrackedApp, maxConnections = 4): AppPool {
  const pool = new AppPool({ host: '127.0.0.1', port: app.port, maxConnections });
  t.teardown(() => {
    pool.close();
    return app.close();
  });
  return pool;
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

t.test('the framing written: none without a body, Content-Length: 0 for a bodiless POST, the length held, chunked otherwise', async (t) => {
  // answers once the request (head, and body by its framing) is complete
  const app = await startTcpApp((seen) => {
    const text = seen.received.toString('latin1');
    if (text.includes('\r\n\r\n') && (!/content-length: [1-9]|transfer-encoding/i.test(text) || text.endsWith('hello') || text.endsWith('0\r\n\r\n'))) seen.socket.write(OK);
  });
  t.teardown(() => app.close());
  // each request on a pool of its own, so on a connection of its own: connections[i] is request i
  const send = async (request: AppRequest, feed?: (body: PassThrough) => void): Promise<string> => {
    const pool = new AppPool({ host: '127.0.0.1', port: app.port });
    const body = feed ? new PassThrough() : undefined;
    body?.pause();
    const handler = new RecordingHandler();
    pool.dispatch(body ? { ...request, body } : request, handler);
    if (body && feed) feed(body);
    await settled(handler);
    pool.close();
    t.equal(handler.status, 200, `${request.method} ${request.path}: answered`);
    return (app.connections[app.connections.length - 1] as SeenConnection).received.toString('latin1');
  };
  const getting = await send(get('/get'));
  t.notMatch(getting.split('\r\n\r\n')[0], /content-length|transfer-encoding/i, 'GET: no framing field');
  const posting = await send({ method: 'POST', path: '/empty', headers: ['host', 'app'] });
  t.match(posting, /\r\ncontent-length: 0\r\n\r\n$/, 'bodiless POST: Content-Length: 0');
  const sized = await send({ method: 'PUT', path: '/sized', headers: ['host', 'app'], contentLength: 5 }, (body) => body.end('hello'));
  t.match(sized, /\r\ncontent-length: 5\r\n\r\nhello$/, 'the declared length, then exactly the bytes');
  const chunked = await send({ method: 'POST', path: '/chunked', headers: ['host', 'app'] }, (body) => {
    body.write('abc');
    body.end('0123456789abcdefg');
  });
  t.match(chunked, /\r\ntransfer-encoding: chunked\r\n\r\n/, 'no length: chunked');
  t.equal(chunked.slice(chunked.indexOf('\r\n\r\n') + 4), '3\r\nabc\r\n11\r\n0123456789abcdefg\r\n0\r\n\r\n', 'chunks in hex, the end last');

  // a body stream may hand out an empty piece (an object-mode one does): never a chunk of size 0,
  // which would end the body there and leave the rest to be read as another request
  const pool = new AppPool({ host: '127.0.0.1', port: app.port });
  const pieces = new Readable({ objectMode: true, read() {} });
  pieces.pause();
  const handler = new RecordingHandler();
  pool.dispatch({ method: 'POST', path: '/pieces', headers: ['host', 'app'], body: pieces }, handler);
  for (const piece of [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cd')]) pieces.push(piece);
  pieces.push(null);
  await settled(handler);
  pool.close();
  const sent = (app.connections[app.connections.length - 1] as SeenConnection).received.toString('latin1');
  t.equal(sent.slice(sent.indexOf('\r\n\r\n') + 4), '2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n', 'the empty piece is skipped');
});

t.test('a body past or short of its Content-Length fails the request and is never finished at the app', async (t) => {
  const app = await startTcpApp(() => {}); // reads, never answers
  const pool = poolFor(t, app);
  for (const [name, rest] of [
    ['past', 'lo world'],
    ['short', ''],
  ] as const) {
    const body = new PassThrough();
    body.pause();
    const handler = new RecordingHandler();
    pool.dispatch({ method: 'POST', path: `/${name}`, headers: ['host', 'app'], body, contentLength: 5 }, handler);
    // the head and a first part reach the app, so anything written after would be seen there
    body.write('hel');
    await waitFor(async () => app.connections.some((c) => c.received.toString('latin1').endsWith(`\r\n\r\nhel`)), 3000, `${name}: the first part at the app`);
    body.end(rest);
    await settled(handler);
    t.equal(handler.error?.code, 'APP_REQUEST_BODY_INCOMPLETE', `${name}: failed`);
    // the connection it was on is closed (one running past its length may never have left the
    // sidecar's buffer: then the app saw the connection and nothing on it)
    await waitFor(async () => app.connections.every((c) => c.closed), 3000, `${name}: the connection closed`);
    for (const seen of app.connections) {
      const sent = seen.received.toString('latin1');
      t.ok(!sent.includes('\r\n\r\n') || sent.slice(sent.indexOf('\r\n\r\n') + 4).length < 5, `${name}: the app never got 5 body bytes (a whole request)`);
    }
  }
});

t.test('answers read: lengths, chunks with trailers, close-delimited, HEAD, 204, 304, 1xx skipped, 40 fields', async (t) => {
  const fields = Array.from({ length: 40 }, (_, i) => `X-F${i}: v${i}\r\n`).join('');
  const answers: Record<string, string> = {
    '/length': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
    '/chunks': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n',
    '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n',
    '/no-content': 'HTTP/1.1 204 No Content\r\n\r\n',
    '/not-modified': 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n',
    '/early-hints': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    // a 100 Continue nobody asked for (some servers send one to every request with a body)
    '/unasked-100': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    '/fields': `HTTP/1.1 200 OK\r\n${fields}Content-Length: 2\r\n\r\nok`,
  };
  const app = await startHeadApp((path, seen) => {
    if (path === '/closing') seen.socket.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
    else seen.socket.write(answers[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  });
  const pool = poolFor(t, app, 1);
  const length = await exchange(pool, get('/length'));
  t.same([length.status, length.body, length.shape], [200, 'hello', 'connect sent headers data complete']);
  const chunks = await exchange(pool, get('/chunks'));
  t.equal(chunks.body, 'hello world');
  t.same(chunks.trailers?.map(String), ['X-Sum', '42'], 'trailers handed on');
  const head = await exchange(pool, { method: 'HEAD', path: '/head', headers: ['host', 'app'] });
  t.same([head.status, head.bytes], [200, 0], 'HEAD: no body read, whatever the length says');
  const noContent = await exchange(pool, get('/no-content'));
  const notModified = await exchange(pool, get('/not-modified'));
  t.same([noContent.status, noContent.bytes, notModified.status, notModified.bytes], [204, 0, 304, 0]);
  const hints = await exchange(pool, get('/early-hints'));
  t.same([hints.status, hints.body, hints.calls.filter((c) => c === 'headers').length], [200, 'ok', 1], '103 skipped, the 200 handed on once');
  const unasked = await exchange(pool, get('/unasked-100'));
  t.same([unasked.status, unasked.body, unasked.error, unasked.calls.filter((c) => c === 'headers').length], [200, 'ok', undefined, 1], 'two 100 Continue nobody asked for skipped, the 200 handed on once');
  const many = await exchange(pool, get('/fields'));
  t.equal(many.rawHeaders.filter((_, i) => i % 2 === 0 && many.rawHeaders[i]?.startsWith('X-F')).length, 40, 'all 40 fields');
  // the HEAD's and the 304-with-a-length's connections are not reused (a body may follow them: below)
  t.equal(app.connections.length, 3, 'all of these on three connections');
  const closing = await exchange(pool, get('/closing'));
  t.same([closing.status, closing.body, closing.shape], [200, 'until the end', 'connect sent headers data complete'], 'a body delimited by the close');
});

t.test("malformed answers and statuses are errors with the parser's or the client's code", async (t) => {
  const answers: Record<string, string> = {
    '/garbage': 'HTTTP/9 what\r\n\r\n',
    '/status-000': 'HTTP/1.1 000 Odd\r\nContent-Length: 0\r\n\r\n',
    '/unasked-101': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n',
    '/two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
    // interim answers without end held the request (and a core) for the route's whole timeout
    '/endless-1xx': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n'.repeat(17),
  };
  const app = await startHeadApp((path, seen) => {
    if (path === '/hang-up') seen.socket.end();
    else seen.socket.write(answers[path] as string);
  });
  const pool = poolFor(t, app);
  const codes: Record<string, string | undefined> = {};
  for (const path of [...Object.keys(answers), '/hang-up']) codes[path] = (await exchange(pool, get(path))).error?.code;
  t.match(codes['/garbage'], /^HPE_/);
  t.equal(codes['/status-000'], 'HPE_INVALID_STATUS');
  t.equal(codes['/unasked-101'], 'APP_UNASKED_UPGRADE');
  t.match(codes['/two-lengths'], /^HPE_/);
  t.equal(codes['/hang-up'], 'APP_CONNECTION_CLOSED');
  t.equal(codes['/endless-1xx'], 'APP_TOO_MANY_INTERIM', 'the 17th interim answer to one request fails it');
});

t.test('16 interim answers, then the final one: handed on', async (t) => {
  const app = await startHeadApp((_path, seen) => seen.socket.write(`${'HTTP/1.1 103 Early Hints\r\n\r\n'.repeat(16)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`));
  const pool = poolFor(t, app);
  for (let i = 0; i < 2; i++) {
    const answer = await exchange(pool, get('/hints'));
    t.same([answer.status, answer.body, answer.error], [200, 'ok', undefined], `request ${i + 1}: the count is per request`);
  }
});

t.test('bytes after an answer, or on an idle connection, close it: the next request gets a new one', async (t) => {
  const app = await startHeadApp((path, seen) => {
    // a body longer than its length: the answer is relayed, the connection not trusted again
    if (path === '/long') seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok!');
    // a second, well-formed answer in the same write: never a second head for the same request
    else if (path === '/pipelined') seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTRAY!');
    else if (path === '/then-idle') {
      seen.socket.write(OK);
      setTimeout(() => seen.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSTRAY!'), 30);
    } else seen.socket.write(OK);
  });
  const pool = poolFor(t, app, 1);
  const long = await exchange(pool, get('/long'));
  t.same([long.status, long.body], [200, 'ok']);
  await waitFor(async () => app.connections[0]?.closed === true, 3000, 'the connection with the extra byte closed');
  const next = await exchange(pool, get('/next'));
  t.same([next.body, app.connections.length], ['ok', 2], 'a new connection');
  await exchange(pool, get('/then-idle'));
  await waitFor(async () => app.connections[1]?.closed === true, 3000, 'bytes on the idle connection closed it');
  const after = await exchange(pool, get('/after'));
  t.same([after.body, app.connections.length], ['ok', 3], 'never read as the next answer');
  const pipelined = await exchange(pool, get('/pipelined'));
  t.same([pipelined.shape, pipelined.body], ['connect sent headers data complete', 'ok'], 'one head, its own body');
  await waitFor(async () => app.connections[2]?.closed === true, 3000, 'the connection with the second answer closed');
  const last = await exchange(pool, get('/last'));
  t.same([last.body, app.connections.length], ['ok', 4], 'the second answer reached nobody');
});

t.test('an answer read without a body (HEAD, 204, 304) whose app may send one anyway: the connection is not reused', async (t) => {
  // the body an app sends late and in its own write (Python's http.server with do_HEAD = do_GET)
  // was read as the next request's answer on the same connection: another caller's 502, or a
  // stray answer handed to another caller as its own
  const late = (seen: SeenConnection, head: string, body: string) => {
    seen.socket.write(head);
    setTimeout(() => !seen.socket.destroyed && seen.socket.write(body), 20);
  };
  const app = await startHeadApp((path, seen, line) => {
    // (the late "body" of this one is itself a whole answer, as a hostile or confused app's may be)
    if (line.startsWith('HEAD ')) late(seen, 'HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray');
    else if (path === '/304-chunked') late(seen, 'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n', '5\r\nstray\r\n0\r\n\r\n');
    else if (path === '/204-length') late(seen, 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', 'stray');
    else if (path === '/304-length-0') seen.socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n');
    else if (path === '/204') seen.socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    // the next request's answer comes after the late bytes, as a slower request's would
    else setTimeout(() => seen.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`), 200);
  });
  const pool = poolFor(t, app, 1);
  for (const [method, path, status] of [['HEAD', '/head', 200], ['GET', '/304-chunked', 304], ['GET', '/204-length', 204]] as const) {
    // another caller's request waits for the one connection: it must not go where the late bytes land
    const carried = app.connections.length + (app.connections.at(-1)?.closed === false ? 0 : 1);
    const [answer, next] = await Promise.all([exchange(pool, { method, path, headers: ['host', 'app'] }), exchange(pool, get(`/after${carried}`))]);
    t.same([answer.status, answer.bytes], [status, 0], `${method} ${path}: no body read`);
    t.same([next.status, next.body, next.error, app.connections.length], [200, `/after${carried}`, undefined, carried + 1], 'the next request gets its own answer, on a new connection');
    const sent = app.connections.flatMap((c) => c.lines).filter((l) => l.startsWith(`GET /after${carried} `)).length;
    t.equal(sent, 1, 'and reached the app once (not again after its first connection broke on the late bytes)');
  }
  // a 204 without framing, a 304 saying 0: nothing may follow, the connection is kept
  const before = app.connections.length;
  for (const path of ['/204', '/304-length-0']) await exchange(pool, get(path));
  t.equal(app.connections.length, before, 'a 204 and a 304 that announce no body keep the connection');
});

t.test('an answer before the whole body is handed on at once, and its connection closed', async (t) => {
  const app = await startTcpApp((seen) => {
    if (seen.received.includes('\r\n\r\n') && !seen.lines.length) {
      seen.lines.push('answered');
      seen.socket.write('HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n');
    }
  });
  const pool = poolFor(t, app);
  const body = new PassThrough();
  body.pause();
  const handler = new RecordingHandler();
  pool.dispatch({ method: 'POST', path: '/upload', headers: ['host', 'app'], body, contentLength: 1_000_000 }, handler);
  body.write(Buffer.alloc(1000));
  await settled(handler);
  t.equal(handler.status, 413);
  t.equal(handler.shape, 'connect headers complete', 'complete without the body having been sent');
  t.equal(body.isPaused(), true, "the rest of the caller's body is left paused for the exchange");
  await waitFor(async () => app.connections[0]?.closed === true, 3000, 'the connection closed, not reused');
});

t.test('backpressure: a false from onData stops reading the app; a full socket pauses the body', async (t) => {
  const TOTAL = 20 * 1024 * 1024;
  let sent = 0;
  const app = await startHeadApp((path, seen) => {
    if (path !== '/big') return; // /upload: read nothing, answer nothing
    seen.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${TOTAL}\r\n\r\n`);
    const piece = Buffer.alloc(64 * 1024, 120);
    const pump = (): void => {
      while (sent < TOTAL && seen.socket.write(piece)) sent += piece.length;
      if (sent < TOTAL) seen.socket.once('drain', () => ((sent += piece.length), pump()));
    };
    pump();
  });
  const pool = poolFor(t, app);
  const reader = new RecordingHandler({ keepChunks: false });
  reader.paused = true;
  pool.dispatch(get('/big'), reader);
  await waitFor(async () => reader.bytes > 0, 3000, 'the first body bytes');
  // let the app fill what it can; what reaches the handler stays bounded
  await waitFor(async () => sent > 0 && app.connections[0]?.socket.writableLength !== 0, 3000, 'the app held back by the paused reader');
  const atPause = reader.bytes;
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(reader.bytes - atPause < 2 * 1024 * 1024, `reading stopped (${reader.bytes} bytes handed on)`);
  reader.unpause();
  await settled(reader, 20_000);
  t.equal(reader.bytes, TOTAL, 'after resume() the rest arrives in full');

  // the app reads nothing: the body is paused once the socket is full
  app.connections[0]?.socket.pause();
  let produced = 0;
  const body = new Readable({
    read() {
      if (produced >= TOTAL) this.push(null);
      else {
        produced += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024));
      }
    },
  });
  body.pause();
  const uploader = new RecordingHandler();
  pool.dispatch({ method: 'POST', path: '/upload', headers: ['host', 'app'], body }, uploader);
  await waitFor(async () => produced > 0 && body.isPaused(), 3000, 'the body paused by the full socket');
  const stalledAt = produced;
  await waitFor(async () => produced === stalledAt, 1000, 'production stopped');
  t.ok(produced < 8 * 1024 * 1024, `the body was not read ahead (${produced} of ${TOTAL} bytes)`);
  uploader.abort?.();
});
