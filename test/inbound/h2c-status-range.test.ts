// An h2c app answering a status outside 100-599. Node's http2 server refuses to send one, and
// nghttp2 (Node's client, the inbound's h2c pool) takes any three digits, so the app here is
// raw frames over TCP: SETTINGS, then HEADERS `:status 999` for each request. The inbound's
// one check (exchange.respond) makes it 502 bad_gateway for HTTP/1.1 and HTTP/2 callers alike,
// never a 999 relayed to an HTTP/1.1 caller.

import t from 'tap';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { FLAG, FRAME, frame, headerBlock, settingsFrame } from '../helpers/raw-h2.js';

const PREFACE_BYTES = 24;

/** A raw h2c app: answers every request stream with `:status` `status` and no body. */
async function startRawH2cApp(status: string): Promise<{ port: number; requests: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { requests: 0 };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(settingsFrame());
    let buf = Buffer.alloc(0);
    let prefaceLeft = PREFACE_BYTES;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (prefaceLeft > 0) {
        const skip = Math.min(prefaceLeft, buf.length);
        buf = buf.subarray(skip);
        prefaceLeft -= skip;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) break;
        const type = buf[3]!;
        const flags = buf[4]!;
        const streamId = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + length);
        if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        if (type === FRAME.HEADERS) {
          state.requests += 1;
          socket.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, streamId, headerBlock([[':status', status]])));
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get requests() {
      return state.requests;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

t.test('an h2c app answering :status 999: 502 bad_gateway to HTTP/1.1 and HTTP/2 callers', async (t) => {
  const app = await startRawH2cApp('999');
  const fx = await startInbound({ externalApp: { protocol: 'h2c', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const tlsOptions = await fx.tlsOptions();
  const h1 = await h1Request(fx.port, tlsOptions, { path: '/odd' });
  t.equal(h1.status, 502, 'HTTP/1.1 caller: 502, not 999 relayed');
  t.equal(h1.headers['x-meshcar-error'], 'bad_gateway');
  t.match(JSON.parse(h1.body.toString()), { error: 'bad_gateway', message: /status 999, outside 100-599/ });
  const session = await h2Connect(fx.port, tlsOptions);
  t.teardown(() => session.close());
  const h2 = await h2Request(session, { ':method': 'GET', ':path': '/odd' });
  t.equal(h2.status, 502, 'HTTP/2 caller: 502');
  t.equal(h2.headers['x-meshcar-error'], 'bad_gateway');
  t.equal(app.requests, 2, 'each request reached the app once (an odd status is no broken connection to retry on)');
});

t.test('the same raw app answering 200 is relayed (the fixture itself works)', async (t) => {
  const app = await startRawH2cApp('200');
  const fx = await startInbound({ externalApp: { protocol: 'h2c', port: app.port } });
  t.teardown(async () => {
    await fx.close();
    await app.close();
  });
  const h1 = await h1Request(fx.port, await fx.tlsOptions(), { path: '/fine' });
  t.equal(h1.status, 200);
});
