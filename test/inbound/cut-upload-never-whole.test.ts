// An upload the inbound stops after a complete early answer (RST_STREAM NO_ERROR to the caller,
// RFC 9113 §8.1) reaches the app cut, never whole-looking: an h2c app gets either all of it
// with END_STREAM or a reset, an HTTP/1.1 app either all of it with its end or a closed
// connection. With `http2.codec: node`, Node ends the caller's stream like a finished body once
// it is closed; piped on, an h2c app got END_STREAM after the first 64 KiB, and took a cut
// upload for a complete one (with no Content-Length, nothing told it otherwise). The app answers
// 202 at once and reads on, slowly; the caller (Node's HTTP/2 client over mutual TLS) sends
// 200,000 bytes. Both codecs, with and without the caller's Content-Length.

import t from 'tap';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { h2Connect, startInbound, type InboundFixture } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

const UPLOAD = Buffer.alloc(200_000, 97);

interface AppSaw {
  bytes: number;
  /** 'end': the body ended as a whole one (END_STREAM, or the chunked last chunk); else how it was cut. */
  outcome: 'pending' | 'end' | 'reset' | 'closed';
}

/** Reads slowly: a pause after each piece, so the upload is still coming when the answer is complete. */
function readSlowly(stream: NodeJS.ReadableStream & { pause(): unknown; resume(): unknown }, onData: (chunk: Buffer) => void): void {
  stream.on('data', (chunk: Buffer) => {
    onData(chunk);
    stream.pause();
    setTimeout(() => stream.resume(), 2);
  });
}

function h2cApp(saw: AppSaw) {
  return {
    protocol: 'h2c' as const,
    handler: (stream: http2.ServerHttp2Stream) => {
      stream.respond({ ':status': 202 }, { endStream: true });
      readSlowly(stream, (chunk) => (saw.bytes += chunk.length));
      stream.on('error', () => {});
      // judged at the close: Node emits 'end' for a stream reset with CANCEL too, its rstCode
      // tells them apart (NO_ERROR: both sides ended, the upload with its END_STREAM)
      stream.on('close', () => (saw.outcome = stream.readableEnded && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR ? 'end' : 'reset'));
    },
  };
}

/** An HTTP/1.1 app on a raw socket: 202 as soon as the head is in, then the chunked body read and decoded. */
async function startChunkedApp(saw: AppSaw): Promise<{ port: number; close(): void }> {
  const server = net.createServer((socket) => {
    let raw = Buffer.alloc(0);
    let answered = false;
    socket.on('error', () => {});
    readSlowly(socket, (chunk) => {
      raw = Buffer.concat([raw, chunk]);
      if (!answered && raw.indexOf('\r\n\r\n') !== -1) {
        answered = true;
        socket.write('HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n');
      }
      const decoded = decodeChunked(raw.subarray(raw.indexOf('\r\n\r\n') + 4));
      saw.bytes = decoded.bytes;
      if (decoded.ended) saw.outcome = 'end';
    });
    socket.on('close', () => {
      if (saw.outcome === 'pending') saw.outcome = 'closed';
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** The bytes of a chunked body so far, and whether its last chunk (size 0) came. */
function decodeChunked(body: Buffer): { bytes: number; ended: boolean } {
  let at = 0;
  let bytes = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd === -1) return { bytes, ended: false };
    const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
    if (size === 0) return { bytes, ended: true };
    const available = Math.min(size, body.length - lineEnd - 2);
    bytes += available;
    if (available < size) return { bytes, ended: false };
    at = lineEnd + 2 + size + 2;
  }
}

async function upload(fx: InboundFixture, withLength: boolean): Promise<number> {
  const session = await h2Connect(fx.port, await fx.tlsOptions());
  try {
    const req = session.request({ ':method': 'POST', ':path': '/upload', ...(withLength ? { 'content-length': String(UPLOAD.length) } : {}) });
    req.on('error', () => {}); // our RST_STREAM NO_ERROR may stop the upload
    req.end(UPLOAD);
    const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    req.resume();
    await once(req, 'close');
    return Number(headers[':status']);
  } finally {
    session.close();
  }
}

for (const codec of ['meshcar', 'node'] as const) {
  for (const withLength of [false, true]) {
    const how = withLength ? 'with its Content-Length' : 'with no Content-Length';
    t.test(`codec ${codec}, h2c app, an upload ${how}: whole with END_STREAM, or reset`, async (t) => {
      const saw: AppSaw = { bytes: 0, outcome: 'pending' };
      const fx = await startInbound({ app: h2cApp(saw), codec });
      t.teardown(() => fx.close());
      t.equal(await upload(fx, withLength), 202, "the caller gets the app's early answer");
      await waitFor(async () => saw.outcome !== 'pending', 10_000, "the app's stream to end");
      if (saw.outcome === 'end') t.equal(saw.bytes, UPLOAD.length, 'an END_STREAM comes only after the whole upload');
      else t.ok(saw.bytes < UPLOAD.length, `cut after ${saw.bytes} bytes, and told so by a reset`);
      t.not(saw.outcome === 'end' && saw.bytes < UPLOAD.length, true, `never a cut upload ended as whole (${saw.outcome} after ${saw.bytes} bytes)`);
      const [record] = await fx.observer.waitForRequests(1);
      t.equal(record?.status, 202, 'recorded with the app status');
    });
  }

  t.test(`codec ${codec}, HTTP/1.1 app, an upload with no Content-Length (chunked to the app): whole with its last chunk, or cut`, async (t) => {
    const saw: AppSaw = { bytes: 0, outcome: 'pending' };
    const app = await startChunkedApp(saw);
    const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port }, codec });
    t.teardown(async () => {
      await fx.close();
      app.close();
    });
    t.equal(await upload(fx, false), 202, "the caller gets the app's early answer");
    await waitFor(async () => saw.outcome !== 'pending', 10_000, "the app's request to end");
    t.not(saw.outcome === 'end' && saw.bytes < UPLOAD.length, true, `never a cut upload ended as whole (${saw.outcome} after ${saw.bytes} bytes)`);
    if (saw.outcome === 'end') t.equal(saw.bytes, UPLOAD.length, 'the last chunk comes only after the whole upload');
  });
}
