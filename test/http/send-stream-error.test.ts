// sendStreamError, the sidecar's own error answer on an HTTP/2 stream, on both codecs (Node's
// http2 and meshcar's H2Connection, h2c on loopback; the client is Node's http2):
// - a stream the caller already reset is expected: nothing is sent, nothing thrown or reported;
// - any other throw is a fault of ours (here an error whose message cannot be read, as a bug in
//   building the answer would throw): it never
//   leaves the function (it would end the process), the stream is reset with INTERNAL_ERROR,
//   and the error is handed back for the caller to log instead of being swallowed.

import t from 'tap';
import http2, { constants as h2 } from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { H2Connection, type H2Stream } from '../../src/h2/index.js';
import type { H2ServerStream } from '../../src/http/h2-server-stream.js';
import { sendStreamError } from '../../src/http/status.js';
import { MeshcarError } from '../../src/errors.js';

type Handler = (stream: H2ServerStream) => void;

/** An error whose answer cannot be built: reading its message throws, as a bug there would. */
function faulty(): MeshcarError {
  const err = new MeshcarError('no_route', 'no such upstream');
  Object.defineProperty(err, 'message', {
    get() {
      throw new TypeError('a fault while building the answer');
    },
  });
  return err;
}

/** An h2c server on loopback handing each stream to `handler`, on the given codec. */
async function serve(codec: 'node' | 'meshcar', handler: Handler): Promise<{ port: number; close(): void }> {
  if (codec === 'node') {
    const server = http2.createServer();
    server.on('stream', (stream) => handler(stream));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sockets = new Set<net.Socket>();
    server.on('connection', (s: net.Socket) => sockets.add(s));
    return { port: (server.address() as AddressInfo).port, close: () => (server.close(), sockets.forEach((s) => s.destroy())) };
  }
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const conn = new H2Connection(socket, { role: 'server' });
    conn.on('error', () => {});
    conn.on('stream', (stream: H2Stream) => handler(stream));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, close: () => (server.close(), sockets.forEach((s) => s.destroy())) };
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a fault of ours resets the stream and is handed back, never thrown`, async (t) => {
    let outcome: { thrown: unknown; returned: unknown } | undefined;
    const server = await serve(codec, (stream) => {
      stream.on('error', () => {}); // the reset's error, as the sidecar's exchanges listen for it
      try {
        outcome = { thrown: undefined, returned: sendStreamError(stream, faulty(), 'a-request-id') };
      } catch (thrown) {
        outcome = { thrown, returned: undefined };
      }
    });
    t.teardown(() => server.close());
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    client.on('error', () => {});
    t.teardown(() => client.destroy());
    const req = client.request({ ':path': '/' }, { endStream: true });
    req.on('error', () => {});
    req.resume();
    const rstCode = await new Promise<number>((resolve) => req.on('close', () => resolve(req.rstCode)));
    await until('the handler to run', () => outcome !== undefined);
    t.equal(outcome!.thrown, undefined, 'nothing thrown');
    t.ok(outcome!.returned instanceof Error, `the fault is handed back for the log (${String(outcome!.returned)})`);
    t.equal(rstCode, h2.NGHTTP2_INTERNAL_ERROR, 'the stream is reset with INTERNAL_ERROR');
  });

  t.test(`${codec} codec: a stream the caller reset is expected: nothing sent, nothing reported`, async (t) => {
    let outcome: { thrown: unknown; returned: unknown } | undefined;
    const server = await serve(codec, (stream) => {
      stream.on('error', () => {});
      // answer only once the caller's reset has arrived (meshcar: localClosed, before 'close')
      const answer = () => {
        if (outcome !== undefined) return;
        try {
          outcome = { thrown: undefined, returned: sendStreamError(stream, new MeshcarError('no_route', 'no such upstream'), 'a-request-id') };
        } catch (thrown) {
          outcome = { thrown, returned: undefined };
        }
      };
      stream.once('aborted', answer);
      stream.once('close', answer);
    });
    t.teardown(() => server.close());
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    client.on('error', () => {});
    t.teardown(() => client.destroy());
    const req = client.request({ ':path': '/' }, { endStream: true });
    req.on('error', () => {});
    req.on('ready', () => req.close(h2.NGHTTP2_CANCEL));
    await until('the handler to answer the reset stream', () => outcome !== undefined);
    t.equal(outcome!.thrown, undefined, 'nothing thrown');
    t.equal(outcome!.returned, undefined, 'nothing to report');
  });
}
