// An h2c app that sends GOAWAY while two of the inbound's requests are in flight on its
// session, its last stream id naming the first only. RFC 9113 §6.8 and §8.7: a stream above the
// last id was never processed, so its request may be sent again whatever its method; one at or
// below it may have run and must not be. The app here is raw frames over TCP (Node's server
// sends no such GOAWAY on demand): its first connection takes two POSTs, then says GOAWAY with
// last id 1 (graceful NO_ERROR: it answers stream 1 and closes; with an error code it closes at
// once); every later connection answers each request 200 with the connection's number.

import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { h1Request, h2Connect, h2Request, startInbound, type SimpleResponse } from '../helpers/inbound-fixture.js';
import { ERROR, FLAG, FRAME, frame, headerBlock, readClientFrames, settingsFrame } from '../helpers/raw-h2.js';

interface GoawayApp {
  readonly port: number;
  /** Request streams opened per connection (by its number, from 1), with the bytes of DATA each carried. */
  readonly streams: Map<number, Map<number, number>>;
  close(): Promise<void>;
}

function goawayFrame(lastStreamId: number, code: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  return frame(FRAME.GOAWAY, 0, 0, payload);
}

async function startGoawayApp(code: number): Promise<GoawayApp> {
  const sockets = new Set<net.Socket>();
  const streams = new Map<number, Map<number, number>>();
  let connections = 0;
  const server = net.createServer((socket) => {
    const n = ++connections;
    const mine = new Map<number, number>();
    streams.set(n, mine);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(settingsFrame());
    const answer = (id: number) => {
      socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '200']])));
      socket.write(frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from(`conn ${n} stream ${id}`)));
    };
    let goneAway = false;
    readClientFrames(
      socket,
      (f) => {
        if (f.type === FRAME.DATA) mine.set(f.streamId, (mine.get(f.streamId) ?? 0) + f.payload.length);
        if (n > 1) {
          // later connections: each request answered at its END_STREAM (its trailers or DATA)
          if (f.type === FRAME.HEADERS && !mine.has(f.streamId)) mine.set(f.streamId, 0);
          if ((f.type === FRAME.HEADERS || f.type === FRAME.DATA) && f.flags & FLAG.END_STREAM) answer(f.streamId);
          return;
        }
        if (f.type !== FRAME.HEADERS || mine.has(f.streamId)) return; // trailers: no new stream
        mine.set(f.streamId, 0);
        if (mine.size === 2 && !goneAway) {
          goneAway = true;
          socket.write(goawayFrame(1, code));
          if (code === ERROR.NO_ERROR) answer(1);
          setImmediate(() => socket.end());
        }
      },
      { answerPings: true },
    );
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    streams,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

for (const [name, code] of [
  ['NO_ERROR', ERROR.NO_ERROR],
  ['ENHANCE_YOUR_CALM', ERROR.ENHANCE_YOUR_CALM],
  ['PROTOCOL_ERROR', ERROR.PROTOCOL_ERROR],
] as const) {
  t.test(`GOAWAY ${name} with last stream 1: the POST on stream 3 is sent again with its body, the one on stream 1 never`, async (t) => {
    const app = await startGoawayApp(code);
    const fx = await startInbound({ externalApp: { protocol: 'h2c', port: app.port } });
    t.teardown(async () => {
      await fx.close();
      await app.close();
    });
    const tlsOptions = await fx.tlsOptions();
    const post = (path: string) => h1Request(fx.port, tlsOptions, { method: 'POST', path, body: 'x'.repeat(100) });
    const first = post('/one');
    // the second goes once the first is on the app's session (its SETTINGS known: same session)
    await until(() => (app.streams.get(1)?.size ?? 0) >= 1, 'the first request at the app');
    const second = post('/two');
    const [one, two] = (await Promise.all([first, second])) as [SimpleResponse, SimpleResponse];
    t.equal(two.status, 200, `stream 3 (never processed) sent again: ${two.status} ${two.body}`);
    t.match(two.body, /^conn 2 /, 'answered on a new connection');
    const again = [...(app.streams.get(2)?.values() ?? [])];
    t.same(again, [100], 'the replay carried the whole body, once');
    if (code === ERROR.NO_ERROR) t.equal(one.status, 200, 'stream 1 answered on the closing session');
    else t.equal(one.status, 502, `stream 1 (may have run) not sent again: ${one.status}`);
    t.equal(app.streams.size, 2, 'two connections, stream 1 never sent twice');
    t.same(fx.observer.appStreamEvents, ['refused:replayed'], 'counted in meshcar_app_streams_refused_total{result="replayed"}');
  });
}

// the caller's body as the inbound's HTTP/2 codecs hand it over (their stream, not node:http's
// message): the replay takes it off the dead stream and sends what was kept, then the rest
for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}, HTTP/2 caller: GOAWAY ENHANCE_YOUR_CALM, the POST above the last id sent again with its body`, async (t) => {
    const app = await startGoawayApp(ERROR.ENHANCE_YOUR_CALM);
    const fx = await startInbound({ externalApp: { protocol: 'h2c', port: app.port }, codec });
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(async () => {
      session.close();
      await fx.close();
      await app.close();
    });
    const post = (path: string) => h2Request(session, { ':method': 'POST', ':path': path }, 'y'.repeat(100));
    const first = post('/one');
    await until(() => (app.streams.get(1)?.size ?? 0) >= 1, 'the first request at the app');
    const second = post('/two');
    const [one, two] = await Promise.all([first, second]);
    t.equal(two.status, 200, `stream 3 sent again: ${two.status} ${two.body.toString()}`);
    t.match(two.body.toString(), /^conn 2 /);
    t.same([...(app.streams.get(2)?.values() ?? [])], [100], 'with its whole body, once');
    t.equal(one.status, 502, 'stream 1 (may have run) not sent again');
  });
}
