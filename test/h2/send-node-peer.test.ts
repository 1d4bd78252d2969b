// Node's core http2 client (nghttp2) raises SETTINGS_INITIAL_WINDOW_SIZE and MAX_FRAME_SIZE
// while our server's response is blocked on its stream window: nghttp2 applies its new
// settings when our SETTINGS ACK arrives, so DATA relying on them must come after that ACK
// (RFC 9113 §6.5.3); ahead of it, the larger DATA is a FLOW_CONTROL_ERROR (stream reset) or a
// FRAME_SIZE_ERROR (the whole connection) to it.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import { startOurServer, tlsPair, waitFor } from './fixtures/h2-helpers.js';

const BODY = 400_000;

t.test("a Node client raising its window and frame size while our response is blocked gets the whole body", async (t) => {
  const server = await startOurServer(
    (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200 });
      stream.end(Buffer.alloc(BODY, 0x61));
    },
    { tls: true },
  );
  t.teardown(server.close);
  const m = await tlsPair();
  const session = http2.connect(`https://127.0.0.1:${server.port}`, { ...m.client, settings: { initialWindowSize: 16384 } } as http2.SecureClientSessionOptions);
  const errors: string[] = [];
  session.on('error', (err: NodeJS.ErrnoException) => errors.push(`session ${err.code}`));
  session.on('goaway', (code: number) => errors.push(`goaway ${code}`));
  t.teardown(() => session.destroy());
  const req = session.request({ ':path': '/' });
  req.on('error', (err: NodeJS.ErrnoException) => errors.push(`stream ${err.code}`));
  req.pause();
  // our side of the stream is blocked on the 16 KiB window the client announced
  await waitFor(() => server.connections[0]?.streams.get(1)?.windowBlocked === true, 'the response blocked on its window');
  const closed = once(req, 'close');
  let acked = false;
  session.settings({ initialWindowSize: 1 << 20, maxFrameSize: 1 << 20 }, () => (acked = true));
  // (a session nghttp2 ended on our frames never calls back)
  await waitFor(() => acked || session.destroyed || errors.length > 0, 'our SETTINGS ACK, or the session ended');
  let received = 0;
  req.on('data', (c: Buffer) => (received += c.length));
  req.resume();
  await closed;
  t.same(errors, [], 'no error on either side');
  t.equal(received, BODY, 'the whole body');
});
