// What the outbound's h2c listener does with what RFC 9113 calls malformed, and with the fields
// it keeps from going on (README, "From an h2c app"), pinned on both HTTP/2 codecs toward the
// upstream. Request trailers with a pseudo-header, a connection-specific field or a wrong
// content-length are a stream error (PROTOCOL_ERROR, §8.1.1 / §8.2.2 / §8.3), not a field to
// drop: the upstream never sees such a request end. Trailers only out of place as trailers
// (a content-length equal to the body's, host) are dropped. `:authority` routes, and a `host`
// beside it is discarded (as Envoy since 1.27.4), never sent on. Extended CONNECT is reset.
// The app side is spoken by hand (Node's client refuses to send most of this); the upstream is a
// real mTLS HTTP/2 server that records what reaches it.

import t from 'tap';
import net from 'node:net';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { makePki, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { ERROR, FLAG, frame, FRAME, headerBlock, requestHeaders, settingsFrame, type Frame } from '../helpers/raw-h2.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

interface Seen {
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
  ended: boolean;
}

/** Sends `frames` on a fresh h2c connection and resolves with what came back on stream 1 once it closed (or the connection did). */
function rawExchange(port: number, frames: Buffer[]): Promise<Frame[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const got: Frame[] = [];
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`stream 1 not over within 5 s: ${got.map((f) => f.type).join(',')}`));
    }, 5_000);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    socket.on('error', () => {});
    socket.on('close', done);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) return;
        const f: Frame = { type: buffered[3] as number, flags: buffered[4] as number, streamId: buffered.readUInt32BE(5) & 0x7fffffff, payload: buffered.subarray(9, 9 + length) };
        buffered = buffered.subarray(9 + length);
        if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (f.streamId !== 1) continue;
        got.push(f);
        if (f.type === FRAME.RST_STREAM || (f.flags & FLAG.END_STREAM) !== 0) done();
      }
    });
    socket.write(Buffer.concat([PREFACE, settingsFrame(), ...frames]));
  });
}

const rstCodeOf = (frames: Frame[]) => frames.find((f) => f.type === FRAME.RST_STREAM)?.payload.readUInt32BE(0);
/** A POST to `path` with body `abc` and these trailers. */
function withTrailers(path: string, trailers: ReadonlyArray<readonly [string, string]>): Buffer[] {
  const head = requestHeaders(1, [[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'payments']], false);
  return [head, frame(FRAME.DATA, 0, 1, Buffer.from('abc')), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(trailers))];
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: malformed h2c input from the app`, async (t) => {
    const pki = await makePki(TD);
    const seen: Seen[] = [];
    const upstream = await startUpstream(pki, {
      handler: (stream: ServerHttp2Stream, headers) => {
        stream.on('error', () => {});
        const entry: Seen = { headers, body: '', trailers: undefined, ended: false };
        seen.push(entry);
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (entry.body += chunk));
        stream.on('trailers', (trailers) => (entry.trailers = trailers));
        stream.on('end', () => {
          // a reset stream's readable side ends too: only a clean end counts
          if (stream.rstCode !== undefined && stream.rstCode !== 0) return;
          entry.ended = true;
          if (!stream.closed) {
            stream.respond({ ':status': 200 });
            stream.end('ok');
          }
        });
      },
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });

    for (const [label, field] of [
      [':status', [':status', '200']],
      [':path', [':path', '/other']],
      ['connection', ['connection', 'close']],
      ['transfer-encoding', ['transfer-encoding', 'chunked']],
      ['te other than trailers', ['te', 'gzip']],
      ['content-length unlike the body', ['content-length', '9']],
    ] as const) {
      const back = await rawExchange(fx.port, withTrailers('/malformed', [field, ['x-sum', '1']]));
      t.equal(rstCodeOf(back), ERROR.PROTOCOL_ERROR, `${label} in the trailers: the stream is reset with PROTOCOL_ERROR`);
    }
    const kept = await rawExchange(fx.port, withTrailers('/kept', [['content-length', '3'], ['host', 'evil.example'], ['x-sum', '1']]));
    t.equal(rstCodeOf(kept), undefined, 'trailers only out of place as trailers: the request goes through');
    const keptSeen = seen.filter((s) => s.headers[':path'] === '/kept');
    t.equal(keptSeen.length, 1);
    t.equal(keptSeen[0]?.body, 'abc');
    t.same(keptSeen[0]?.trailers && Object.entries(keptSeen[0].trailers), [['x-sum', '1']], 'content-length and host dropped from the trailers, the rest kept');
    // after a later request on the same upstream session: whatever of them went upstream has arrived
    t.notOk(seen.some((s) => s.headers[':path'] === '/malformed' && s.ended), 'no malformed request ever reached the upstream whole');

    const hosted = await rawExchange(fx.port, [requestHeaders(1, [[':method', 'GET'], [':scheme', 'http'], [':path', '/hosted'], [':authority', 'payments'], ['host', 'evil.example']])]);
    t.equal(rstCodeOf(hosted), undefined, 'a host beside :authority: answered');
    const hostedSeen = seen.find((s) => s.headers[':path'] === '/hosted');
    t.equal(hostedSeen?.headers[':authority'], 'payments', 'routed and sent by :authority');
    t.equal(hostedSeen?.headers.host, undefined, 'the host field discarded, never sent on');

    const before = seen.length;
    const extended = await rawExchange(fx.port, [requestHeaders(1, [[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'http'], [':path', '/ws'], [':authority', 'payments']], false)]);
    t.equal(rstCodeOf(extended), ERROR.PROTOCOL_ERROR, 'extended CONNECT: reset (the listener offers no SETTINGS_ENABLE_CONNECT_PROTOCOL)');
    await rawExchange(fx.port, [requestHeaders(1, [[':method', 'GET'], [':scheme', 'http'], [':path', '/after'], [':authority', 'payments']])]);
    t.equal(seen.length, before + 1, 'and nothing of it reached the upstream (only the request after it)');
  });
}
