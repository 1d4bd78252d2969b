// Frames on closed streams and the graceful close's last stream id, over mutual TLS with our
// test CA: late frames a well-behaved peer sent before our RST_STREAM reached it are ignored
// (RFC 9113 §5.1), on either side and for any number of streams, without costing the peer its
// connection; past what those streams could still carry they are errors again; a request racing
// our final GOAWAY is dropped whole (trailers included) while the drained stream completes, and
// no GOAWAY names a higher last stream id than an earlier one (§6.8); a connection destroyed by
// a callback in the middle of a socket chunk reads no further.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { ErrorCode } from '../../src/h2/constants.js';
import { H2Connection } from '../../src/h2/connection.js';
import type { H2Stream } from '../../src/h2/stream.js';
import { RecordingH2Observer, readBody, startOurServer, tlsPair, waitFor } from './fixtures/h2-helpers.js';
import { FLAG, FRAME, connectRawH2, describe, errorCodeOf, frame, headerBlock, lastStreamOf, pingRoundTrip, requestHeaders, settingsFrame, type Frame } from '../helpers/raw-h2.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

const PREFACE_LENGTH = 24;
/** HPACK: the static table's ":status: 200", indexed. */
const STATUS_200 = Buffer.from([0x88]);
const post = (path: string): Array<[string, string]> => [[':method', 'POST'], [':scheme', 'https'], [':path', path], [':authority', 'x']];
const get = (path: string): Array<[string, string]> => [[':method', 'GET'], [':scheme', 'https'], [':path', path], [':authority', 'x']];

interface RawServerPeer {
  readonly frames: Frame[];
  write(bytes: Buffer): void;
}

/** A TLS server speaking HTTP/2 by hand (to our client): SETTINGS, ACKs, and what the test writes. */
async function rawServer(t: TapTest): Promise<{ port: number; peer: Promise<RawServerPeer> }> {
  const m = await tlsPair();
  let resolvePeer!: (p: RawServerPeer) => void;
  const peer = new Promise<RawServerPeer>((r) => (resolvePeer = r));
  const server = tls.createServer({ ...m.server, ALPNProtocols: ['h2'] }, (socket) => {
    const frames: Frame[] = [];
    let buf = Buffer.alloc(0);
    let prefaceLeft = PREFACE_LENGTH;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (prefaceLeft > 0) {
        const n = Math.min(prefaceLeft, buf.length);
        buf = buf.subarray(n);
        prefaceLeft -= n;
      }
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const length = buf.readUIntBE(0, 3);
        const f: Frame = { type: buf[3]!, flags: buf[4]!, streamId: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + length) };
        buf = buf.subarray(9 + length);
        frames.push(f);
        if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
    });
    socket.write(settingsFrame());
    resolvePeer({ frames, write: (bytes) => socket.write(bytes) });
    t.teardown(() => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { port: (server.address() as AddressInfo).port, peer };
}

async function ourTlsClient(port: number, observer: RecordingH2Observer): Promise<H2Connection> {
  const m = await tlsPair();
  const socket = tls.connect({ ...m.client, host: '127.0.0.1', port, ALPNProtocols: ['h2'] });
  await once(socket, 'secureConnect');
  const conn = new H2Connection(socket, { role: 'client', observer });
  conn.on('error', () => {});
  await once(conn, 'connect');
  return conn;
}

const count = (frames: readonly Frame[], type: number, code?: number): number => frames.filter((f) => f.type === type && (code === undefined || errorCodeOf(f) === code)).length;

t.test('our client cancels 220 requests in flight: the server answers already on the way are ignored, the session stays up', async (t) => {
  const { port, peer: peerP } = await rawServer(t);
  const observer = new RecordingH2Observer();
  const conn = await ourTlsClient(port, observer);
  t.teardown(() => conn.destroy());
  const peer = await peerP;
  const N = 220; // more than the 128 recent resets the old books kept
  const streams: H2Stream[] = [];
  for (let i = 0; i < N; i++) {
    const s = conn.request({ ':method': 'GET', ':scheme': 'https', ':path': `/slow/${i}`, ':authority': 'x' }, { endStream: true });
    s.on('error', () => {});
    streams.push(s);
  }
  await waitFor(() => count(peer.frames, FRAME.HEADERS) === N, 'the server to see every request');
  for (const s of streams) s.close(ErrorCode.CANCEL); // a deadline wave: every caller gone
  // the server's answers were written before our RST_STREAMs reached it: a head, a body and its end each
  const late: Buffer[] = [];
  for (const s of streams) late.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, s.id, STATUS_200), frame(FRAME.DATA, FLAG.END_STREAM, s.id, Buffer.from('late body')));
  peer.write(Buffer.concat(late));
  // the session still carries a request; its answer comes after all the late frames
  const fresh = conn.request({ ':method': 'GET', ':scheme': 'https', ':path': '/fresh', ':authority': 'x' }, { endStream: true });
  await waitFor(() => peer.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === fresh.id), 'the fresh request');
  let status: string | undefined;
  fresh.on('response', (h: Record<string, string>) => (status = h[':status']));
  const body = readBody(fresh);
  peer.write(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS, fresh.id, STATUS_200), frame(FRAME.DATA, FLAG.END_STREAM, fresh.id, Buffer.from('fresh body'))]));
  t.equal((await body).toString(), 'fresh body', 'the fresh request completes on the same session');
  t.equal(status, '200');
  t.notOk(conn.destroyed, 'the session is up');
  t.same(observer.closed, [], 'no connection error');
  t.equal(count(peer.frames, FRAME.GOAWAY), 0, `no GOAWAY (${describe(peer.frames.filter((f) => f.type === FRAME.GOAWAY))})`);
  t.equal(count(peer.frames, FRAME.RST_STREAM), N, 'one RST_STREAM per cancelled request, none for the late frames');
  t.equal(count(peer.frames, FRAME.RST_STREAM, ErrorCode.CANCEL), N);
});

t.test('our server answers 260 uploads early and resets them: the caller’s DATA in flight earns no GOAWAY', async (t) => {
  const server = await startOurServer(
    (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': stream.id === 1001 ? 200 : 403 }, { endStream: true }); // the body is never read
    },
    { tls: true },
  );
  t.teardown(server.close);
  const raw = await connectRawH2(server.port, (await tlsPair()).client, { ackSettings: true });
  t.teardown(() => raw.destroy());
  const N = 260;
  const ids = Array.from({ length: N }, (_, i) => 1 + 2 * i);
  raw.write(Buffer.concat(ids.map((id) => requestHeaders(id, post('/upload'), false))));
  await waitFor(() => count(raw.frames, FRAME.RST_STREAM, ErrorCode.NO_ERROR) === N, 'every upload answered and reset with NO_ERROR');
  // what the caller had sent before the resets reached it: a DATA frame and the body's end each
  raw.write(Buffer.concat(ids.map((id) => frame(FRAME.DATA, 0, id, Buffer.alloc(1000, 0x78)))));
  raw.write(Buffer.concat(ids.map((id) => frame(FRAME.DATA, FLAG.END_STREAM, id))));
  await pingRoundTrip(raw, 1);
  t.equal(count(raw.frames, FRAME.GOAWAY), 0, `no GOAWAY (${describe(raw.frames.filter((f) => f.type === FRAME.GOAWAY))})`);
  t.equal(count(raw.frames, FRAME.RST_STREAM, ErrorCode.STREAM_CLOSED), 0, 'no STREAM_CLOSED resets');
  t.same(server.observer.streamErrors, [], 'no stream error counted');
  t.same(server.observer.closed, []);
  // the connection still serves a request
  raw.write(requestHeaders(1001, get('/after')));
  await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1001, 'the answer to a request after the late frames');
});

t.test('past what the streams we closed could carry, frames on closed streams are errors again, bounded by the MadeYouReset budget', async (t) => {
  const window = 16_384;
  const server = await startOurServer(
    (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 403 }, { endStream: true });
    },
    { tls: true, limits: { initialWindowSize: window } },
  );
  t.teardown(server.close);
  const raw = await connectRawH2(server.port, (await tlsPair()).client, { ackSettings: true });
  t.teardown(() => raw.destroy());
  raw.write(requestHeaders(1, post('/upload'), false));
  await raw.waitFor((f) => f.type === FRAME.RST_STREAM && f.streamId === 1, 'the early answer’s reset');
  // up to the stream's window: what a well-behaved caller could have had in flight
  raw.write(Buffer.concat(Array.from({ length: window / 1024 }, () => frame(FRAME.DATA, 0, 1, Buffer.alloc(1024)))));
  await pingRoundTrip(raw, 1);
  t.equal(count(raw.frames, FRAME.RST_STREAM, ErrorCode.STREAM_CLOSED), 0, 'the window’s worth is ignored');
  // beyond it: no peer may send this; each frame is a stream error, and a flood of them ends the connection
  raw.write(Buffer.concat(Array.from({ length: 300 }, () => frame(FRAME.DATA, 0, 1, Buffer.alloc(1)))));
  const goaway = await raw.waitFor((f) => f.type === FRAME.GOAWAY, 'GOAWAY');
  t.equal(errorCodeOf(goaway), ErrorCode.ENHANCE_YOUR_CALM);
  t.ok(count(raw.frames, FRAME.RST_STREAM, ErrorCode.STREAM_CLOSED) > 0, 'STREAM_CLOSED resets before it');
  await waitFor(() => server.observer.closed.length > 0, 'the close counted');
  t.equal(server.observer.closed[0]?.reason, 'made_you_reset');
});

/** Graceful close up to our final GOAWAY(last=1), with stream 1 in flight; returns the raw peer. */
async function drainToFinalGoaway(t: TapTest, onEnd: (stream: H2Stream) => void) {
  const server = await startOurServer(
    (stream) => {
      stream.on('error', () => {});
      stream.resume();
      stream.on('end', () => onEnd(stream));
    },
    { tls: true },
  );
  t.teardown(server.close);
  const raw = await connectRawH2(server.port, (await tlsPair()).client, { ackSettings: true });
  t.teardown(() => raw.destroy());
  raw.write(requestHeaders(1, post('/upload'), false));
  await waitFor(() => server.connections[0]?.activeStreams === 1, 'stream 1 open');
  server.connections[0]!.close();
  const ping = await raw.waitFor((f) => f.type === FRAME.PING && !(f.flags & FLAG.ACK), 'the graceful close’s PING');
  raw.write(frame(FRAME.PING, FLAG.ACK, 0, ping.payload));
  await raw.waitFor((f) => f.type === FRAME.GOAWAY && lastStreamOf(f) === 1, 'the final GOAWAY(last=1)');
  // stream 3 raced the final GOAWAY: its head, a message and its trailers were already sent
  raw.write(Buffer.concat([requestHeaders(3, post('/grpc'), false), frame(FRAME.DATA, 0, 3, Buffer.from('msg')), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, headerBlock([['grpc-status', '0']]))]));
  return { server, raw };
}

function goawayIds(frames: readonly Frame[]): number[] {
  return frames.filter((f) => f.type === FRAME.GOAWAY).map(lastStreamOf);
}

t.test('a request racing our final GOAWAY is dropped with its trailers; the drained stream completes', async (t) => {
  const { server, raw } = await drainToFinalGoaway(t, (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('stream 1 done');
  });
  raw.write(frame(FRAME.DATA, FLAG.END_STREAM, 1, Buffer.from('end of stream 1')));
  await raw.waitFor((f) => f.type === FRAME.DATA && f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0, 'stream 1 answered in full');
  await waitFor(() => server.observer.closed.length > 0, 'the connection closed');
  t.same(server.observer.closed, [{ reason: 'normal', code: 0 }], 'closed normally once stream 1 completed');
  t.same(server.observer.streamErrors, []);
  const goaways = raw.frames.filter((f) => f.type === FRAME.GOAWAY);
  t.same(goaways.map(errorCodeOf), goaways.map(() => ErrorCode.NO_ERROR), `no GOAWAY with an error (${describe(goaways)})`);
  t.same(goawayIds(raw.frames), [0x7fffffff, 1]);
  t.notOk(raw.frames.some((f) => f.streamId === 3), 'nothing sent on stream 3');
});

t.test('a connection error after the final GOAWAY names no higher last stream id', async (t) => {
  const { server, raw } = await drainToFinalGoaway(t, () => {});
  raw.write(frame(FRAME.DATA, 0, 7, Buffer.from('x'))); // an idle stream: a connection error
  await waitFor(() => server.observer.closed.length > 0, 'the connection error');
  await raw.waitFor((f) => f.type === FRAME.GOAWAY && errorCodeOf(f) === ErrorCode.PROTOCOL_ERROR, 'the error GOAWAY');
  t.equal(server.observer.closed[0]?.reason, 'protocol_error', 'DATA on idle stream 7, not HEADERS on stream 3');
  t.same(goawayIds(raw.frames), [0x7fffffff, 1, 1], 'each GOAWAY’s last id is no higher than the one before');
});

t.test('a connection destroyed by a stream handler reads nothing more of the same socket chunk', async (t) => {
  const socketErrors: string[] = [];
  let emitted = 0;
  const server = await startOurServer(
    (stream, _headers, _end, conn) => {
      emitted++;
      stream.on('error', () => {});
      conn.socket.on('error', (e: NodeJS.ErrnoException) => socketErrors.push(e.code ?? e.message));
      conn.destroy();
    },
    { tls: true },
  );
  t.teardown(server.close);
  const raw = await connectRawH2(server.port, (await tlsPair()).client, { ackSettings: true });
  t.teardown(() => raw.destroy());
  await raw.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0, 'our SETTINGS acknowledged');
  // one write, one TLS record, one chunk: two requests and a body frame
  raw.write(Buffer.concat([requestHeaders(1, get('/a')), requestHeaders(3, get('/b')), frame(FRAME.DATA, 0, 1, Buffer.from('late'))]));
  await raw.closed;
  t.equal(emitted, 1, 'one stream emitted');
  t.same(server.observer.closed, [{ reason: 'destroyed', code: 0 }]);
  t.same(server.observer.streamErrors, [], 'no stream refused nor reset after the destroy');
  t.same(socketErrors, [], 'no write after the socket ended');
  t.equal(count(raw.frames, FRAME.RST_STREAM), 0);
});
