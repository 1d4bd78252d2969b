// Interop with Node's core http2 (nghttp2) over mutual TLS, ALPN h2, both ways: our client
// against a core server, a core client against our server. GETs, multi-MB bodies both ways,
// trailers both ways, RST_STREAM, GOAWAY, many concurrent streams, 100-continue, and flow
// control with a consumer that does not read (the sender must be held at the window).

import t from 'tap';
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ErrorCode } from '../../src/h2/constants.js';
import type { H2Stream } from '../../src/h2/stream.js';
import { connectOurClient, ourRequest, readBody, startOurServer, tlsPair, waitFor } from './fixtures/h2-helpers.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const bigBody = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32BE(i >>> 0, i);
  return b;
};

async function coreServer(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, onRequest?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void) {
  const m = await tlsPair();
  const server = http2.createSecureServer({ ...m.server, settings: { maxConcurrentStreams: 1000 } }, onRequest);
  if (!onRequest)
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      onStream(stream, headers);
    });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    sessions,
    close: () => {
      for (const s of sessions) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

async function coreClient(port: number, settings?: http2.Settings) {
  const m = await tlsPair();
  const session = http2.connect(`https://127.0.0.1:${port}`, { ...m.client, ...(settings ? { settings } : {}) });
  session.on('error', () => {});
  await once(session, 'connect');
  t.equal((session.socket as unknown as { alpnProtocol: string }).alpnProtocol, 'h2', 'core client negotiated h2');
  return session;
}

function coreRequest(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer; trailers?: http2.IncomingHttpHeaders; rstCode?: number }>((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    req.on('response', (h) => (head = h));
    req.on('trailers', (tr) => (trailers = tr));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('close', () => resolve({ headers: head, body: Buffer.concat(chunks), trailers, rstCode: req.rstCode }));
    req.on('aborted', () => {});
    if (body !== undefined) req.end(body);
    void reject;
  });
}

t.test('our client → core server over mTLS', async (t) => {
  const server = await coreServer((stream, headers) => {
    const path = headers[':path'] as string;
    if (path === '/rst') {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (path === '/continue') {
      stream.additionalHeaders({ ':status': 100 });
      readBody(stream).then((b) => {
        stream.respond({ ':status': 200 });
        stream.end(`got ${b.toString()}`);
      });
      return;
    }
    if (path === '/trailers') {
      const chunks: Buffer[] = [];
      let reqTrailers: http2.IncomingHttpHeaders | undefined;
      stream.on('trailers', (tr) => (reqTrailers = tr));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-got-trailer': String(reqTrailers?.['x-req-trailer']) }));
        stream.end(Buffer.concat(chunks));
      });
      return;
    }
    if (headers[':method'] === 'HEAD') {
      stream.respond({ ':status': 200, 'content-length': 12345 }, { endStream: true });
      return;
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      stream.respond({ ':status': 200, 'x-method': headers[':method'], 'x-sha': sha(body), 'set-cookie': ['a=1', 'b=2'] });
      stream.end(path === '/echo' ? body : `hello ${path}`);
    });
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());

  const coreSession = [...server.sessions][0]!;
  t.ok((coreSession.socket as unknown as import('node:tls').TLSSocket).authorized, "the core server verified our client's certificate");
  const get = await ourRequest(conn, { ':path': '/hi' });
  t.equal(get.headers[':status'], '200');
  t.same(get.headers['set-cookie'], ['a=1', 'b=2'], 'repeated headers arrive as an array');
  t.equal(get.body.toString(), 'hello /hi');

  const head = await ourRequest(conn, { ':path': '/hi', ':method': 'HEAD' });
  t.equal(head.headers['content-length'], '12345', 'a HEAD response announces a length it does not carry');
  t.equal(head.body.length, 0, 'and is not a content-length mismatch');

  const up = bigBody(5_000_000);
  const echo = await ourRequest(conn, { ':path': '/echo', ':method': 'POST' }, up);
  t.equal(echo.headers['x-sha'], sha(up), 'the core server received the 5 MB body intact');
  t.equal(sha(echo.body), sha(up), 'and echoed it back intact');

  // trailers both ways: request trailers from us, response trailers from the core server
  const trailersDone = new Promise<{ trailers: unknown; body: Buffer }>((resolve, reject) => {
    const s = conn.request({ ':method': 'POST', ':scheme': 'https', ':authority': 'x', ':path': '/trailers', te: 'trailers' }, { waitForTrailers: true });
    let trailers: unknown;
    s.on('trailers', (tr) => (trailers = tr));
    s.on('wantTrailers', () => s.sendTrailers({ 'x-req-trailer': 'yes' }));
    readBody(s).then((body) => resolve({ trailers, body }), reject);
    s.end('grpc-frame');
  });
  const tr = await trailersDone;
  t.equal(tr.body.toString(), 'grpc-frame');
  t.match(tr.trailers, { 'grpc-status': '0', 'x-got-trailer': 'yes' }, 'response trailers arrive, request trailers were received');

  // RST_STREAM from the server
  const rst = conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'x', ':path': '/rst' }, { endStream: true });
  const [err] = (await once(rst, 'error')) as [{ h2Code: number; reason: string }];
  t.equal(err.h2Code, ErrorCode.INTERNAL_ERROR, 'the reset code reaches the stream');
  t.equal(err.reason, 'reset_by_peer');
  t.equal(rst.rstCode, ErrorCode.INTERNAL_ERROR);

  // 100-continue: the body waits for the core server's informational 100
  const continued = await new Promise<{ informational: unknown; body: string }>((resolve, reject) => {
    const s = conn.request({ ':method': 'POST', ':scheme': 'https', ':authority': 'x', ':path': '/continue', expect: '100-continue' });
    let informational: unknown;
    s.on('headers', (h) => (informational = h));
    s.on('continue', () => s.end('the body'));
    s.on('error', reject);
    readBody(s).then((b) => resolve({ informational, body: b.toString() }), reject);
  });
  t.match(continued.informational, { ':status': '100' }, "the core server's 100 Continue arrived as informational headers");
  t.equal(continued.body, 'got the body', 'the body sent after it was received');

  // concurrent large bodies both ways share the connection window without stalling
  const bodies = Array.from({ length: 16 }, (_, i) => bigBody(700_000 + i * 1000));
  const echoed = await Promise.all(bodies.map((b) => ourRequest(conn, { ':path': '/echo', ':method': 'POST' }, b)));
  t.ok(
    echoed.every((r, i) => r.body.equals(bodies[i]!)),
    '16 concurrent ~0.7 MB echoes through the core server, all intact',
  );

  // many concurrent streams
  const many = await Promise.all(Array.from({ length: 300 }, (_, i) => ourRequest(conn, { ':path': `/n${i}` })));
  t.ok(many.every((r, i) => r.body.toString() === `hello /n${i}`), '300 concurrent streams all answered right');
  t.equal(conn.activeStreams, 0, 'no stream left open');

  // GOAWAY from the server: the connection takes no new streams and closes
  const goaway = once(conn, 'goaway');
  for (const s of server.sessions) s.close();
  const [code] = (await goaway) as [number];
  t.equal(code, ErrorCode.NO_ERROR);
  t.throws(() => conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'x', ':path': '/' }), { code: 'ERR_H2_SESSION_CLOSING' });
  await waitFor(() => conn.destroyed, 'connection closed after GOAWAY');
});

t.test('core client → our server over mTLS', async (t) => {
  let cancelled: H2Stream | undefined;
  const server = await startOurServer(
    (stream, headers) => {
      const path = headers[':path'] as string;
      if (path === '/rst') return stream.close(ErrorCode.REFUSED_STREAM);
      if (path === '/cancelled') {
        cancelled = stream;
        stream.on('error', () => {});
        return;
      }
      if (path === '/continue') {
        stream.additionalHeaders({ ':status': 100 });
        readBody(stream).then((b) => {
          stream.respond({ ':status': 200 });
          stream.end(`got ${b.length}`);
        });
        return;
      }
      let reqTrailers: unknown;
      stream.on('trailers', (tr) => (reqTrailers = tr));
      readBody(stream).then((body) => {
        if (path === '/trailers') {
          stream.respond({ ':status': 200 }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-got': JSON.stringify(reqTrailers) }));
          stream.end(body);
          return;
        }
        stream.respond({ ':status': 200, 'x-sha': sha(body), 'x-method': headers[':method'] as string });
        stream.end(path === '/echo' ? body : `hello ${path}`);
      });
    },
    { tls: true },
  );
  t.teardown(server.close);
  const session = await coreClient(server.port);
  t.teardown(() => session.destroy());

  await waitFor(() => server.connections.length === 1, 'our server connection');
  const serverSocket = server.connections[0]!.socket as unknown as import('node:tls').TLSSocket;
  t.ok(serverSocket.authorized, 'our server verified the core client certificate');
  t.match(serverSocket.getPeerCertificate().subjectaltname, 'spiffe://mesh.test/svc/client');
  const get = await coreRequest(session, { ':path': '/hi' });
  t.equal(get.headers[':status'], 200);
  t.equal(get.body.toString(), 'hello /hi');

  const up = bigBody(6_000_000);
  const echo = await coreRequest(session, { ':path': '/echo', ':method': 'POST' }, up);
  t.equal(echo.headers['x-sha'], sha(up), 'our server received the 6 MB body intact');
  t.equal(sha(echo.body), sha(up), 'and sent it back intact');

  const trailers = await new Promise<{ trailers?: http2.IncomingHttpHeaders; body: string }>((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': '/trailers' }, { waitForTrailers: true });
    req.on('wantTrailers', () => req.sendTrailers({ 'x-req': 'yes' }));
    let tr: http2.IncomingHttpHeaders | undefined;
    req.on('trailers', (x) => (tr = x));
    readBody(req).then((b) => resolve({ trailers: tr, body: b.toString() }));
    req.end('payload');
  });
  t.equal(trailers.body, 'payload');
  t.equal(trailers.trailers?.['grpc-status'], '0', 'response trailers reach the core client');
  t.match(JSON.parse(trailers.trailers?.['x-got'] as string), { 'x-req': 'yes' }, 'request trailers reached our server');

  const rst = await coreRequest(session, { ':path': '/rst' });
  t.equal(rst.rstCode, http2.constants.NGHTTP2_REFUSED_STREAM, 'our RST_STREAM code reaches the core client');

  // the core client cancels a request in flight: our stream is aborted with its code
  const toCancel = session.request({ ':method': 'POST', ':path': '/cancelled' });
  toCancel.on('error', () => {});
  toCancel.write('partial');
  await waitFor(() => cancelled !== undefined, 'the stream to arrive');
  const aborted = once(cancelled!, 'aborted');
  toCancel.close(http2.constants.NGHTTP2_CANCEL);
  await aborted;
  t.equal(cancelled!.rstCode, ErrorCode.CANCEL, "the core client's RST_STREAM CANCEL reached our stream");
  await waitFor(() => cancelled!.destroyed, 'our stream destroyed');

  // 100-continue: the core client waits for our informational 100 before sending its body
  const cont = await new Promise<{ continued: boolean; body: string }>((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': '/continue', expect: '100-continue' });
    let continued = false;
    req.on('continue', () => {
      continued = true;
      req.end('after-continue');
    });
    readBody(req).then((b) => resolve({ continued, body: b.toString() }));
  });
  t.ok(cont.continued, 'the core client saw 100 Continue');
  t.equal(cont.body, 'got 14');

  const bodies = Array.from({ length: 16 }, (_, i) => bigBody(700_000 + i * 1000));
  const echoed = await Promise.all(bodies.map((b) => coreRequest(session, { ':path': '/echo', ':method': 'POST' }, b)));
  t.ok(
    echoed.every((r, i) => r.body.equals(bodies[i]!)),
    '16 concurrent ~0.7 MB echoes from the core client through our server, all intact',
  );

  const many = await Promise.all(Array.from({ length: 200 }, (_, i) => coreRequest(session, { ':path': `/n${i}` })));
  t.ok(
    many.every((r, i) => r.body.toString() === `hello /n${i}`),
    '200 concurrent streams answered',
  );

  // graceful GOAWAY: two-step, a request in flight still completes
  const conn = server.connections[0]!;
  const slow = new Promise<void>((resolve) => {
    const req = session.request({ ':method': 'POST', ':path': '/echo' });
    req.write('part1');
    const goaway = once(session, 'goaway');
    conn.close();
    goaway.then(() => {
      req.end('part2');
      readBody(req).then((b) => {
        t.equal(b.toString(), 'part1part2', 'the stream in flight finished after GOAWAY');
        resolve();
      });
    });
  });
  await slow;
  await waitFor(() => conn.destroyed, 'our server connection closed after its streams');
  t.same(server.observer.closed, [{ reason: 'normal', code: 0 }], 'closed normally, counted once');
});

t.test('flow control holds a sender at the window while the consumer does not read', async (t) => {
  const window = 256 * 1024;
  let held: H2Stream | undefined;
  const server = await startOurServer(
    (stream) => {
      held = stream;
      stream.pause(); // the consumer takes nothing for now
    },
    { tls: true, limits: { initialWindowSize: window, connectionWindowSize: 4 * window } },
  );
  t.teardown(server.close);
  const session = await coreClient(server.port);
  t.teardown(() => session.destroy());
  const req = session.request({ ':method': 'POST', ':path': '/slow' });
  const total = 8 * 1024 * 1024;
  const body = bigBody(total);
  req.end(body);
  await waitFor(() => held !== undefined && held.dataReceived >= window, 'the first window of data');
  // everything the client sent before this PING has been processed when its ACK comes back
  await new Promise<void>((resolve) => session.ping(() => resolve()));
  t.equal(held!.dataReceived, window, 'the sender stopped exactly at the stream window');
  t.equal(held!.readableLength, window, 'what arrived waits in the stream, unread');
  // now the consumer reads slowly: credit flows back as it reads, and everything arrives
  held!.resume();
  const got = await readBody(held!);
  t.equal(got.length, total);
  t.equal(sha(got), sha(body), 'the whole body arrived once the consumer read it');
  held!.respond({ ':status': 204 }, { endStream: true });
});

t.test('our sender is held by a core receiver that does not read', async (t) => {
  let coreStream: http2.ServerHttp2Stream | undefined;
  const server = await coreServer((stream) => {
    coreStream = stream;
    stream.pause();
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());
  const s = conn.request({ ':method': 'POST', ':scheme': 'https', ':authority': 'x', ':path': '/' });
  s.on('error', () => {});
  const chunk = Buffer.alloc(1024 * 1024, 1);
  t.notOk(s.write(chunk), 'write() of more than the window returns false');
  await waitFor(() => coreStream !== undefined && (s.sendWindow.available === 0 || conn.sendWindow.available === 0), 'the window to be spent');
  // the core server's windows are 65,535 bytes (stream and connection): that much and no more left
  t.equal(s.bytesSent, 65_535, 'exactly one window was sent; the rest waits in the stream');
  t.equal(s.writableLength, chunk.length, 'the chunk is still held (its callback waits for the window)');
  const drained = once(s, 'drain');
  coreStream!.resume();
  await drained;
  t.pass('drain once the receiver reads');
  s.end();
  await waitFor(() => coreStream!.readableEnded, 'the core server to see the end');
});
