// Limits and lifecycle our own peers can reach without python: a peer that never acknowledges
// our SETTINGS, a peer that floods us with PINGs while never reading (the answers pile up),
// PING round trips, a client's graceful close, stream counting, the rapid-reset budget with a
// well-behaved peer that also completes streams, and credit returned only as the consumer
// reads (real backpressure, measured on our own pair).

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { CLIENT_PREFACE, ErrorCode, Flag, FrameType } from '../../src/h2/constants.js';
import { H2Connection } from '../../src/h2/connection.js';
import type { H2Stream } from '../../src/h2/stream.js';
import { connectOurClient, ourRequest, readBody, RecordingH2Observer, startOurServer, waitFor } from './fixtures/h2-helpers.js';
import { frame } from '../helpers/raw-h2.js';
import { DEADLINE_RESET_FLOOR_MS, DEADLINE_RESETS_FACTOR, peerResetKind, PREMATURE_RESET_MS, ResetBudget } from '../../src/h2/limits.js';
import { ResetGuard } from '../../src/inbound/reset-guard.js';


/** `count` requests the server holds unanswered, each reset by the client at once (CANCEL): premature resets. */
function resetUnanswered(conn: H2Connection, count: number): void {
  for (let i = 0; i < count; i++) {
    const s = conn.request({ ':method': 'GET', ':scheme': 'http', ':authority': 'x', ':path': '/hold' }, { endStream: true });
    s.on('error', () => {});
    s.close(ErrorCode.CANCEL);
  }
}

/** Reads frames from a raw socket; resolves with the first GOAWAY's error code. */
function goawayCode(socket: net.Socket): Promise<number> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        if (buf[3] === FrameType.GOAWAY) resolve(buf.readUInt32BE(13));
        buf = buf.subarray(9 + len);
      }
    });
  });
}

t.test('a peer that never acknowledges our SETTINGS gets SETTINGS_TIMEOUT', async (t) => {
  const server = await startOurServer(() => {}, { limits: { settingsTimeoutMs: 200 } });
  t.teardown(server.close);
  const socket = net.connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0))]));
  t.equal(await goawayCode(socket), ErrorCode.SETTINGS_TIMEOUT);
  t.same(server.observer.closed, [{ reason: 'settings_timeout', code: ErrorCode.SETTINGS_TIMEOUT }]);
  socket.destroy();
});

// no other frame may come between a HEADERS without END_HEADERS and its last CONTINUATION, and
// the fragments are copies kept outside any body budget: a peer holding a block open sat until
// the connection's maximum age (a review)
t.test('a header block not finished in time ends the connection as continuation_flood; one finished in time does not', async (t) => {
  const server = await startOurServer((stream: H2Stream) => stream.on('error', () => {}), { limits: { headerBlockTimeoutMs: 200 } });
  t.teardown(server.close);
  const open = async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)), frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0))]));
    return socket;
  };
  // :method GET, :scheme http (static indexes), then :path / and :authority x
  const head = Buffer.from([0x82, 0x86]);
  const rest = Buffer.from([0x84, 0x41, 0x01, 0x78]);

  const finished = await open();
  t.teardown(() => finished.destroy());
  const finishedGoaway = goawayCode(finished);
  finished.write(frame(FrameType.HEADERS, Flag.END_STREAM, 1, head));
  finished.write(frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, rest));
  const quiet = await Promise.race([finishedGoaway, new Promise<string>((done) => setTimeout(() => done('no GOAWAY'), 600))]);
  t.equal(quiet, 'no GOAWAY', 'a block finished by its CONTINUATION: the timer is gone with it');

  const held = await open();
  t.teardown(() => held.destroy());
  const started = Date.now();
  held.write(frame(FrameType.HEADERS, Flag.END_STREAM, 3, head)); // no END_HEADERS, and nothing after it
  t.equal(await goawayCode(held), ErrorCode.ENHANCE_YOUR_CALM, 'a block left open: GOAWAY ENHANCE_YOUR_CALM');
  t.ok(Date.now() - started >= 190, `not before the timeout (${Date.now() - started} ms)`);
  t.same(server.observer.closed, [{ reason: 'continuation_flood', code: ErrorCode.ENHANCE_YOUR_CALM }], 'counted as continuation_flood, once');
});

t.test('a peer that floods PINGs and never reads is cut off before the answers pile up', async (t) => {
  const server = await startOurServer(() => {}, { limits: { maxPingsPerWindow: 1e9, maxOutboundBuffer: 256 * 1024 } });
  t.teardown(server.close);
  const socket = net.connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause(); // never reads: our PING ACKs stay in the server's socket buffer
  socket.write(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0)), frame(FrameType.SETTINGS, Flag.ACK, 0, Buffer.alloc(0))]));
  const ping = frame(FrameType.PING, 0, 0, Buffer.alloc(8));
  const burst = Buffer.concat(Array.from({ length: 4096 }, () => ping));
  socket.on('error', () => {});
  for (let i = 0; i < 400 && server.observer.closed.length === 0; i++) {
    if (!socket.write(burst)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
  }
  await waitFor(() => server.observer.closed.length > 0, 'the server to give up');
  t.equal(server.observer.closed[0]?.reason, 'outbound_flood');
  socket.destroy();
});

t.test('PING round trip, stream counting and a client graceful close', async (t) => {
  let held: H2Stream | undefined;
  const server = await startOurServer((stream, headers) => {
    if (headers[':path'] === '/hold') {
      held = stream;
      return;
    }
    stream.respond({ ':status': 200 }, { endStream: true });
  });
  t.teardown(server.close);
  const observer = new RecordingH2Observer();
  const conn = await connectOurClient(server.port, { observer });
  const rtt = await new Promise<number>((resolve, reject) => conn.ping((err, ms) => (err ? reject(err) : resolve(ms))));
  t.ok(rtt >= 0, `PING answered in ${rtt.toFixed(3)} ms`);
  const s = conn.request({ ':method': 'GET', ':scheme': 'http', ':authority': 'x', ':path': '/hold' }, { endStream: true });
  const response = once(s, 'response');
  await waitFor(() => held !== undefined, 'the server stream');
  t.equal(conn.activeStreams, 1, 'one stream open on the client');
  t.equal(server.connections[0]!.activeStreams, 1, 'and on the server');
  conn.close();
  t.throws(() => conn.request({ ':method': 'GET', ':scheme': 'http', ':authority': 'x', ':path': '/' }), { code: 'ERR_H2_SESSION_CLOSING' }, 'no new streams while closing');
  held!.respond({ ':status': 204 }, { endStream: true });
  await response;
  await waitFor(() => conn.destroyed && server.connections[0]!.destroyed, 'both ends closed once the stream finished');
  t.same(observer.closed, [{ reason: 'normal', code: 0 }]);
  await waitFor(() => server.observer.closed.length === 1, 'server close counted');
  t.equal(server.observer.closed[0]?.reason, 'normal');
});

t.test('rapid reset: a peer that completes streams too may cancel some; one that only resets is cut off', async (t) => {
  const server = await startOurServer(
    (stream, headers) => {
      stream.on('error', () => {});
      if (headers[':path'] === '/ok') stream.respond({ ':status': 200 }, { endStream: true });
    },
    { limits: { maxResetsPerWindow: 20 } },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  // 40 completed, then 30 cancelled: resets exceed the limit but not the completed streams
  await Promise.all(Array.from({ length: 40 }, () => ourRequest(conn, { ':path': '/ok' })));
  resetUnanswered(conn, 30);
  await new Promise<void>((r) => conn.ping(() => r()));
  t.same(server.observer.closed, [], 'a busy, well-behaved peer is not cut off');
  resetUnanswered(conn, 30);
  await waitFor(() => server.observer.closed.length > 0, 'GOAWAY for rapid reset');
  t.same(server.observer.closed[0], { reason: 'rapid_reset', code: ErrorCode.ENHANCE_YOUR_CALM });
  await waitFor(() => conn.destroyed, 'the client saw the GOAWAY');
});

// A stream answered in full while the caller's request was still open, then reset by the caller
// (its CANCEL after our END_STREAM) or by us (the unread body's RST_STREAM NO_ERROR), was
// counted neither a reset nor a completion: only resets counted then, and a caller cancelling
// requests it had its answers to was cut off sooner than on the node codec, which counts them
// completed (reset-guard.ts).
t.test('rapid reset: streams answered in full before the caller ended them count as completed', async (t) => {
  const server = await startOurServer(
    (stream, headers) => {
      stream.on('error', () => {});
      if (headers[':path'] === '/read') stream.resume(); // its body read: the caller's CANCEL ends it
      if (headers[':path'] !== '/hold') stream.respond({ ':status': 200 }, { endStream: true });
    },
    { limits: { maxResetsPerWindow: 20 } },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  // 40 answered while the request body was still open (20 read, 20 unread), then 30 cancelled
  // unanswered: resets over the limit, but not over the completed streams
  for (const path of ['/read', '/unread']) {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const s = conn.request({ ':method': 'POST', ':scheme': 'http', ':authority': 'x', ':path': path }, { endStream: false });
        s.on('error', () => {});
        await readBody(s).catch(() => undefined);
        s.close(ErrorCode.CANCEL);
      }),
    );
  }
  resetUnanswered(conn, 30);
  await new Promise<void>((r) => conn.ping(() => r()));
  t.same(server.observer.closed, [], 'no GOAWAY: the answered streams count as completed');
});

t.test('rapid reset counts premature resets only: streams cancelled after their answer started are ordinary ends', async (t) => {
  const server = await startOurServer(
    (stream, headers) => {
      stream.on('error', () => {});
      // answered (head and some body), then held open: a watch the caller will cancel
      if (headers[':path'] === '/watch') {
        stream.respond({ ':status': 200 });
        stream.write('first');
      }
    },
    { limits: { maxResetsPerWindow: 20 } },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  // one long stream the caller keeps, then 60 answered ones it cancels (three times the limit)
  const keep = conn.request({ ':method': 'GET', ':scheme': 'http', ':authority': 'x', ':path': '/watch' }, { endStream: true });
  // heard from the start: the GOAWAY at the end errors it (connection_lost) as soon as the client
  // reads it, which may be before the waitFor below sees the server's side (an unheard 'error'
  // ended the test process one run in five)
  keep.on('error', () => {});
  await once(keep, 'response');
  const watches = await Promise.all(
    Array.from({ length: 60 }, async () => {
      const s = conn.request({ ':method': 'GET', ':scheme': 'http', ':authority': 'x', ':path': '/watch' }, { endStream: true });
      s.on('error', () => {});
      await once(s, 'response');
      return s;
    }),
  );
  for (const s of watches) s.close(ErrorCode.CANCEL);
  await new Promise<void>((r) => conn.ping(() => r()));
  t.same(server.observer.closed, [], 'answered streams cancelled: no GOAWAY');
  t.notOk(keep.destroyed, 'the long stream is still open');
  // the budget still guards: unanswered streams reset at once trip it as before
  resetUnanswered(conn, 120);
  await waitFor(() => server.observer.closed.length > 0, 'GOAWAY for rapid reset');
  t.same(server.observer.closed[0], { reason: 'rapid_reset', code: ErrorCode.ENHANCE_YOUR_CALM });
});

t.test('a reset past half its stream\'s own deadline is the deadline\'s; the floor keeps short deadlines counted', async (t) => {
  t.equal(peerResetKind(false, 250, undefined), 'premature', 'no deadline: premature under a second');
  t.equal(peerResetKind(false, 250, 400), 'deadline', 'past half of a 400 ms deadline: the deadline\'s');
  t.equal(peerResetKind(false, 150, 400), 'premature', 'before half of it: premature');
  t.equal(peerResetKind(false, DEADLINE_RESET_FLOOR_MS - 1, 150), 'premature', `past half of a 150 ms deadline but under ${DEADLINE_RESET_FLOOR_MS} ms old: premature (a peer cannot name a tiny deadline to reset freely)`);
  t.equal(peerResetKind(false, 40, 60), 'premature', 'past half of a 60 ms deadline, not nine tenths of it: premature');
  // a gRPC call with a 60 ms deadline, cut by the calling sidecar just before the inbound's own
  // DEADLINE_EXCEEDED: counted premature, such calls closed the caller's connection (a review)
  t.equal(peerResetKind(false, 55, 60), 'deadline', 'nine tenths of a deadline under the floor: the deadline\'s');
  // a peer naming a 1 ms deadline reset 2,000 streams in 9 ms into the deadline budget (a review)
  t.equal(peerResetKind(false, 1, 1), 'premature', 'a tiny deadline: premature, under 20 ms old');
  t.equal(peerResetKind(false, 19, 20), 'premature', 'under 20 ms old whatever the deadline');
  t.equal(peerResetKind(false, 20, 21), 'deadline', 'from 20 ms, nine tenths of a short one');
  t.equal(peerResetKind(false, DEADLINE_RESET_FLOOR_MS, 150), 'deadline', 'at the floor, past half: the deadline\'s');
  t.equal(peerResetKind(true, 10, undefined), undefined, 'answered: an ordinary end');
  t.equal(peerResetKind(false, PREMATURE_RESET_MS + 1, undefined), undefined, 'over a second old: an ordinary end');
});

// exempt outright, a peer naming a 200 ms deadline and resetting at 100 ms went uncounted at
// 2,500 streams a second per connection: a budget of their own, DEADLINE_RESETS_FACTOR times larger
t.test('resets at their deadlines have a budget of their own, ten times larger, on both codecs\' counters', async (t) => {
  const limit = 20;
  const budget = new ResetBudget(limit, 10_000);
  const trips: string[] = [];
  const guard = new ResetGuard(limit, (_g, resets, _completed, reason) => trips.push(`${reason} ${resets}`), 0);
  for (let i = 0; i < limit * DEADLINE_RESETS_FACTOR; i++) {
    t.equal(budget.peerReset(false, 150, 1, 200), undefined);
    guard.streamReset(false, 150, 1, 200);
  }
  t.same(trips, [], `${limit * DEADLINE_RESETS_FACTOR} at their deadlines: within the budget`);
  t.equal(budget.peerReset(false, 150, 1, 200), 'rapid_reset', 'one more: rapid_reset (meshcar codec)');
  guard.streamReset(false, 150, 1, 200);
  t.same(trips, [`rapid_reset ${limit * DEADLINE_RESETS_FACTOR + 1}`], 'and on the node codec\'s guard');
  // premature ones keep their own limit beside them
  const fresh = new ResetBudget(limit, 10_000);
  for (let i = 0; i < limit; i++) fresh.peerReset(false, 150, 1, 200);
  for (let i = 0; i < limit; i++) t.equal(fresh.peerReset(false, 10, 1, undefined), undefined);
  t.equal(fresh.peerReset(false, 10, 1, undefined), 'rapid_reset', 'premature resets past their limit, deadline ones aside');
});

// an overloaded callee's callers (one identity, many connections) cancel at their deadlines on
// every connection: counted together they closed them all (a re-review: 10 connections, ~920
// calls a second, 25 of 45 timing out); premature resets are shared, these are not
t.test("resets at their deadlines count per connection only, not across the caller's connections", async (t) => {
  const limit = 20;
  const shared = new ResetBudget(limit, 10_000);
  const connections = [0, 1, 2].map(() => new ResetBudget(limit, 10_000, shared));
  const seen: Array<string | undefined> = [];
  // 70 on each of three connections: under each one's 200, 210 for the caller
  for (const c of connections) for (let i = 0; i < 70; i++) seen.push(c.peerReset(false, 150, 1, 200));
  t.equal(seen.indexOf('rapid_reset'), -1, `210 at their deadlines over three connections: none cut`);
});

// a tenth of the budget per connection, and a reconnect starting afresh: a caller spreading over
// 1,024 connections, or reconnecting in a loop, reset 20,000 streams in 8 s uncut (a re-review);
// past five times its budget every connection of the caller that resets more than it completes
// is cut at once, while one whose calls complete is not
t.test("premature resets: past five times the caller's budget, any of its connections resetting more than it completes is cut", async (t) => {
  const limit = 200;
  const shared = new ResetBudget(limit, 10_000);
  const healthy = new ResetBudget(limit, 10_000, shared);
  for (let i = 0; i < 5; i++) healthy.completedStream(1);
  let firstCut = -1;
  let resets = 0;
  for (let c = 0; c < 400 && firstCut === -1; c++) {
    const connection = new ResetBudget(limit, 10_000, shared);
    // 15 each: under a tenth of the budget (20), so no one connection is cut for its share
    for (let i = 0; i < 15; i++, resets++) {
      if (connection.peerReset(false, 10, 1) !== undefined) {
        firstCut = resets;
        break;
      }
    }
  }
  t.equal(firstCut, limit * 5, `the caller's ${limit * 5 + 1}st premature reset is cut (it was never, at 15 a connection)`);
  const fresh = new ResetBudget(limit, 10_000, shared);
  t.equal(fresh.peerReset(false, 10, 1), 'rapid_reset', 'then a fresh connection at its first');
  t.equal(healthy.peerReset(false, 10, 1), undefined, 'but not one whose 5 calls completed, at one cancel');
});

// buffer_limit resets are ours, in a budget of their own (ten times): past it for the caller, the
// connection the next one comes on is cut, whatever its own share (gated per connection, 20
// connections × 200 uploads went uncut: a re-review)
t.test("buffer_limit resets past the caller's budget cut the connection the next one comes on", async (t) => {
  const limit = 10;
  const shared = new ResetBudget(limit, 10_000);
  const seen: Array<string | undefined> = [];
  for (let c = 0; c < 11; c++) {
    const connection = new ResetBudget(limit, 10_000, shared);
    for (let i = 0; i < 10; i++) seen.push(connection.bufferLimitReset(1));
  }
  t.equal(seen.indexOf('made_you_reset'), limit * DEADLINE_RESETS_FACTOR, `the caller's ${limit * DEADLINE_RESETS_FACTOR + 1}st is cut, on a connection with one of its own`);
  // but not a replica of the identity whose calls complete, at its first upload into the budget
  // the other filled (a re-review: cut with 300 calls completed, and its call in flight lost)
  const healthy = new ResetBudget(limit, 10_000, shared);
  for (let i = 0; i < 5; i++) healthy.completedStream(1);
  t.equal(healthy.bufferLimitReset(1), undefined, 'a connection with 5 calls completed keeps going at one buffer_limit reset');
  t.equal(new ResetBudget(limit, 10_000, shared).bufferLimitReset(1), 'made_you_reset', 'a fresh one with none completed is cut');
});

t.test('credit goes back as the consumer reads, not as DATA arrives (our pair)', async (t) => {
  const window = 64 * 1024;
  let held: H2Stream | undefined;
  const server = await startOurServer(
    (stream) => {
      held = stream;
      stream.pause();
    },
    { limits: { initialWindowSize: window } },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  const s = conn.request({ ':method': 'POST', ':scheme': 'http', ':authority': 'x', ':path': '/' });
  s.on('error', () => {});
  const body = Buffer.alloc(1 << 20, 7);
  s.end(body);
  await waitFor(() => held !== undefined && held.dataReceived >= window, 'a window of data');
  await new Promise<void>((r) => conn.ping(() => r()));
  t.equal(held!.dataReceived, window, 'the sender stopped at the window: no credit while nothing was read');
  t.equal(s.bytesSent, window, 'our client framed exactly one window');
  // read a quarter of the window: that much credit goes back, and no more arrives than that
  held!.read(window / 4);
  await waitFor(() => held!.dataReceived > window, 'credit for what was read');
  await new Promise<void>((r) => conn.ping(() => r()));
  t.ok(held!.dataReceived <= window + window / 4, `after reading a quarter, at most a quarter more arrived (${held!.dataReceived - window})`);
  held!.resume();
  t.equal((await readBody(held!)).length + window / 4, body.length, 'then the whole body');
  conn.destroy();
});

t.test('a server that answers without reading the request body: the client is told to stop, the stream closes', async (t) => {
  let closed = 0;
  const server = await startOurServer((stream) => {
    stream.on('close', () => closed++);
    stream.respond({ ':status': 413 }, { endStream: true }); // never reads the body
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  t.teardown(() => conn.destroy());
  const s = conn.request({ ':method': 'POST', ':scheme': 'http', ':authority': 'x', ':path': '/upload' });
  s.on('error', (err) => t.fail(`no error expected: ${err.message}`));
  s.resume(); // the (empty) response body is consumed, as a caller would
  const response = once(s, 'response');
  const streamClosed = once(s, 'close');
  s.write(Buffer.alloc(200_000)); // more than the window: would stall forever without the reset
  const [head] = (await response) as [Record<string, string>];
  t.equal(head[':status'], '413');
  await streamClosed;
  t.equal(s.rstCode, ErrorCode.NO_ERROR, 'RST_STREAM NO_ERROR after the complete response (RFC 9113 §8.1)');
  await waitFor(() => closed === 1, "the server stream's close");
  t.equal(server.connections[0]!.activeStreams, 0, 'nothing left open on the server');
  t.equal(conn.activeStreams, 0, 'nor on the client');
  t.same(server.observer.streamErrors, [], 'not counted as a stream error');
});

t.test('small windows: 16 concurrent uploads and downloads share them without stalling (our pair)', async (t) => {
  const limits = { initialWindowSize: 16 * 1024, connectionWindowSize: 64 * 1024 };
  const server = await startOurServer(
    (stream) => {
      readBody(stream).then((body) => {
        stream.respond({ ':status': 200 });
        stream.end(body);
      });
    },
    { limits },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { limits });
  t.teardown(() => conn.destroy());
  const bodies = Array.from({ length: 16 }, (_, i) => Buffer.alloc(300_000 + i, i));
  const echoed = await Promise.all(bodies.map((b) => ourRequest(conn, { ':method': 'POST', ':path': '/echo' }, b)));
  t.ok(
    echoed.every((r, i) => r.body.equals(bodies[i]!)),
    'every body came back intact through 16 KiB stream and 64 KiB connection windows',
  );
  t.equal(conn.activeStreams + server.connections[0]!.activeStreams, 0, 'no stream left open');
});

t.test('a stream with only its END_STREAM left does not wait behind a shut connection window', async (t) => {
  const server = await startOurServer(
    (stream, headers) => {
      stream.on('error', () => {});
      if (headers[':path'] === '/a') return stream.pause(); // takes nothing: the connection window shuts
      readBody(stream).then((b) => {
        stream.respond({ ':status': 200 });
        stream.end(`b got ${b.length}`);
      });
    },
    { limits: { initialWindowSize: 1 << 20, connectionWindowSize: 65_535 } },
  );
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  t.teardown(() => conn.destroy());
  const b = conn.request({ ':method': 'POST', ':scheme': 'http', ':authority': 'x', ':path': '/b' });
  b.on('error', () => {});
  const a = conn.request({ ':method': 'POST', ':scheme': 'http', ':authority': 'x', ':path': '/a' });
  a.on('error', () => {});
  a.write(Buffer.alloc(200_000));
  await waitFor(() => conn.sendWindow.available === 0, 'the connection window to shut');
  let status: string | undefined;
  b.on('response', (h: Record<string, string>) => (status = h[':status']));
  const body = readBody(b);
  b.end(); // nothing to send but END_STREAM
  await waitFor(() => status !== undefined, 'the answer to the stream that only had to end', 3000);
  t.equal(status, '200');
  t.equal((await body).toString(), 'b got 0', 'the stream ended and was answered while the window stayed shut');
  t.equal(conn.sendWindow.available, 0, 'the window is still shut');
});

t.test('a connection can start from bytes a sniffer already read, on a paused socket', async (t) => {
  const server = net.createServer((socket) => {
    socket.once('data', (first: Buffer) => {
      socket.pause();
      const conn = new H2Connection(socket, { role: 'server', head: first });
      conn.on('stream', (stream) => {
        stream.respond({ ':status': 200 });
        stream.end('sniffed');
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const conn = await connectOurClient((server.address() as net.AddressInfo).port);
  t.teardown(() => conn.destroy());
  const r = await ourRequest(conn, { ':path': '/' });
  t.equal(r.body.toString(), 'sniffed');
});

t.test('a peer vanishing mid-stream: the stream is aborted with connection_lost, the close counted as socket_error', async (t) => {
  let held: H2Stream | undefined;
  const server = await startOurServer((stream) => {
    held = stream;
  });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port);
  const s = conn.request({ ':method': 'POST', ':scheme': 'http', ':authority': 'x', ':path': '/' });
  s.on('error', () => {});
  s.write('part');
  await waitFor(() => held !== undefined, 'the server stream');
  const aborted = once(held!, 'aborted');
  const errored = once(held!, 'error');
  conn.socket.destroy();
  await aborted;
  const [err] = (await errored) as [{ reason: string }];
  t.equal(err.reason, 'connection_lost');
  await waitFor(() => server.observer.closed.length === 1, 'the close counted');
  t.equal(server.observer.closed[0]?.reason, 'socket_error');
});
