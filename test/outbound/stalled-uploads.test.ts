// An upload that outlives its answer. The app answers 413 at once to a POST announcing 8 MiB
// and the caller keeps sending.
//
// Toward meshcar's inbound, the peer ends the stream with RST_STREAM(NO_ERROR) after its
// complete answer (RFC 9113 §8.1): the outbound then reads and drops the rest of the upload,
// so the upstream stream is released at once and the caller's keep-alive connection serves
// its next request once the body has ended; a caller that stops sending mid-body, its socket
// open, has its connection closed once the dropped upload stands still for a second.
//
// Toward a peer that keeps the stream open without reading (its window shuts), the outbound's
// pipe pauses the caller's socket, and a paused socket is not read, so its FIN or RST went
// unseen: the upstream stream (the gauge, a circuit slot, the peer's request) was held until
// an idle timeout, ~60 s. Now an upload that stands still while paused for a second after the
// complete answer is given up: the stream cancelled, the connection closed. An upload still
// moving is left alone. Both codecs.

import t from 'tap';
import net from 'node:net';
import type http2 from 'node:http2';
import { SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';
import { makePki, sleep, startOutbound, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { parseResponse } from '../helpers/raw-http.js';

async function waitUntil(check: () => boolean, what: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

interface Caller {
  readonly socket: net.Socket;
  text(): string;
  bytes(): Buffer;
}

async function connect(port: number): Promise<Caller> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  socket.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, text: () => received.toString('latin1'), bytes: () => received };
}

/** Sends up to 8 MiB of the announced body; bounded by 5 s; stops once a write waits `stallMs` for 'drain'. */
async function upload(socket: net.Socket, stallMs: number): Promise<{ sent: number; stalled: boolean }> {
  const chunk = Buffer.alloc(65536, 97);
  let sent = 0;
  const until = Date.now() + 5000;
  while (sent < 8388608 && !socket.destroyed && Date.now() < until) {
    sent += chunk.length;
    if (socket.write(chunk)) continue;
    const drained = await Promise.race([new Promise((r) => socket.once('drain', () => r(true))), sleep(stallMs).then(() => false)]);
    if (!drained) return { sent, stalled: true };
  }
  return { sent, stalled: false };
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: an early answer from meshcar's inbound: the rest of the upload is dropped, the connection lives on`, async (t) => {
    const peer = await startInbound({
      codec,
      app: {
        protocol: 'http',
        handler: (req, res) => {
          req.on('error', () => {});
          if (req.url === '/early') {
            // answered at once; the body is not read on purpose
            res.writeHead(413, { 'content-length': '5' }).end('early');
            return;
          }
          req.resume();
          req.on('end', () => res.end('done'));
        },
      },
    });
    t.teardown(() => peer.close());
    const fx = await startOutbound(peer.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${peer.port}`], identity: SERVER_ID }], { codec });
    t.teardown(() => fx.close());
    const streams = () => fx.observer.streams.get('orders') ?? 0;

    const caller = await connect(fx.port);
    caller.socket.write('POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 8388608\r\n\r\n');
    const { sent, stalled } = await upload(caller.socket, 3000);
    t.notOk(stalled, `the whole upload was taken (sent ${sent} bytes)`);
    t.equal(sent, 8388608, 'all 8 MiB went');
    await waitUntil(() => parseResponse(caller.bytes(), false) !== undefined, 'the early answer', 3000);
    t.equal(parseResponse(caller.bytes(), false)?.status, 413, 'the early answer reached the caller');
    await waitUntil(() => streams() === 0 && fx.outbound.inFlight === 0, 'the upstream stream is released', 3000);
    await waitUntil(() => peer.inbound.inFlight === 0, "the peer's request is over", 3000);
    t.notOk(caller.socket.destroyed, 'the caller keeps its connection');
    caller.socket.write('POST /next HTTP/1.1\r\nHost: orders\r\nContent-Length: 1\r\n\r\nx');
    await waitUntil(() => /200 OK[\s\S]*done/.test(caller.text()), 'the next request on the connection is answered', 3000);
    caller.socket.destroy();

    // review-diff-s7 B6: a caller that sends part of the body, then stops without closing: the
    // upload being dropped stands still, and its connection is closed (the listener has no
    // request timeout: it was held for ever)
    const stopper = await connect(fx.port);
    let closed = false;
    stopper.socket.on('close', () => (closed = true));
    stopper.socket.write('POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 100000\r\n\r\n');
    stopper.socket.write(Buffer.alloc(1000, 97));
    await waitUntil(() => parseResponse(stopper.bytes(), false) !== undefined, 'the early answer', 3000);
    t.equal(parseResponse(stopper.bytes(), false)?.status, 413, 'answered early');
    const ms = await waitUntil(() => closed, "the stopped upload's connection is closed", 4000).catch(() => -1);
    t.ok(ms >= 0 && ms < 3000, `the connection of an upload that stopped is closed (${ms < 0 ? 'not within 4 s' : `${ms} ms after the answer`})`);
    await waitUntil(() => streams() === 0 && fx.outbound.inFlight === 0, 'nothing in flight', 3000);
    stopper.socket.destroy();
  });

  t.test(`codec ${codec}: a stalled upload after an early answer from a peer that stops reading, then the caller gone`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki, {
      handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
        stream.on('error', () => {});
        if (headers[':path'] === '/early') {
          // answered at once; one chunk read, then no more: the stream stays open, its window shuts
          stream.once('data', () => stream.pause());
          stream.respond({ ':status': 413, 'content-length': '5' });
          stream.end('early');
          return;
        }
        stream.resume();
        stream.on('end', () => {
          stream.respond({ ':status': 200 });
          stream.end('done');
        });
      },
    });
    t.teardown(() => upstream.close());
    const fx = await startOutbound(pki, [{ name: 'orders', endpoints: [`127.0.0.1:${upstream.port}`], identity: UPSTREAM_ID }], { codec });
    t.teardown(() => fx.close());
    const streams = () => fx.observer.streams.get('orders') ?? 0;

    const caller = await connect(fx.port);
    caller.socket.write('POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 8388608\r\n\r\n');
    const { sent, stalled } = await upload(caller.socket, 300);
    t.ok(stalled, `the upload stalled (sent ${sent} bytes)`);
    await waitUntil(() => parseResponse(caller.bytes(), false) !== undefined, 'the early answer', 3000).catch(() => {});
    t.equal(parseResponse(caller.bytes(), false)?.status, 413, 'the early answer reached the caller');
    t.equal(streams(), 1, 'the upstream stream is open while the upload is pending');
    caller.socket.destroy();
    const ms = await waitUntil(() => streams() === 0 && fx.outbound.inFlight === 0, 'the upstream stream is released', 4000);
    t.ok(ms < 4000, `released ${ms} ms after the caller went`);

    // an upload answered early that keeps moving (slowly, never paused) is not cut: it ends,
    // and the connection serves the next request
    const steady = await connect(fx.port);
    steady.socket.write('POST /early HTTP/1.1\r\nHost: orders\r\nContent-Length: 30\r\n\r\n');
    for (let i = 0; i < 6; i++) {
      await sleep(300); // 1.8 s in all, past the stall bound
      steady.socket.write('abcde');
    }
    await waitUntil(() => steady.text().length > 0, 'the early answer', 3000).catch(() => {});
    t.match(steady.text(), /^HTTP\/1\.1 413/, 'answered early');
    t.notOk(steady.socket.destroyed, 'the slow upload was not cut');
    steady.socket.write('POST /next HTTP/1.1\r\nHost: orders\r\nContent-Length: 1\r\n\r\nx');
    await waitUntil(() => /200 OK[\s\S]*done/.test(steady.text()), 'the next request on the connection is answered', 3000);
    steady.socket.destroy();
  });
}
