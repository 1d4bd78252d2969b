// An upstream that answers an h2c app's upload at once (202, END_STREAM) and reads the upload on,
// slowly: it gets all of it. The app's stream closes once our answer is out and its body has
// ended, while the last window of the upload is still on its way upstream; that close cancelled
// the upstream stream (a review: 180,111 of 200,000 bytes, then RST_STREAM CANCEL). Now a whole
// exchange's close lets the upload finish (an app that resets still cancels it: its reset sets
// the stream's code, which other files test). Both codecs; a
// real Node HTTP/2 upstream reading 32 KiB every 100 ms in paused mode.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import { startH2cAppToUpstream, waitUntil } from '../helpers/outbound-fixture.js';

const TOTAL = 200_000;

/**
 * The upstream of these tests: 202 at once, then the upload read in paused mode, at most
 * `perTick` bytes every 100 ms (0: never), through a stream window of `window` bytes. `tuning`:
 * the route's idle timeout and the PING interval of the outbound's sessions.
 */
async function startSlowReader(
  t: Parameters<typeof startH2cAppToUpstream>[0],
  codec: 'meshcar' | 'node',
  { perTick = 32_768, window = 16_384, tuning = {} }: { perTick?: number; window?: number; tuning?: Parameters<typeof startH2cAppToUpstream>[3] } = {},
) {
  // received: what had come by the stream's close, read or still in its buffer
  const seen = { got: 0, received: 0, ended: false, rstCode: undefined as number | undefined };
  const started = await startH2cAppToUpstream(
    t,
    codec,
    {
      settings: { initialWindowSize: window },
      handler: (stream) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 202 }, { endStream: true });
        stream.on('close', () => (seen.rstCode = stream.rstCode));
        if (perTick === 0) {
          // paused, with no 'readable' listener: Node then closes such a stream on our CANCEL
          stream.pause();
          return;
        }
        const tick = setInterval(() => {
          let n = 0;
          let chunk: Buffer | null;
          while (n < perTick && (chunk = stream.read() as Buffer | null) !== null) n += chunk.length;
          seen.got += n;
        }, 100);
        stream.on('readable', () => {}); // paused mode: read by the tick alone
        stream.on('end', () => (seen.ended = true));
        stream.on('close', () => {
          clearInterval(tick);
          seen.received = seen.got + stream.readableLength;
        });
      },
    },
    tuning,
  );
  return { ...started, seen };
}

/** The app's upload of `bytes`; resolves with our answer's status, `closed` once the app's stream has closed. */
function upload(session: http2.ClientHttp2Session, bytes = TOTAL): { status: Promise<number>; closed: Promise<unknown> } {
  const stream = session.request({ ':method': 'POST', ':path': '/ingest', ':authority': 'payments' });
  const status = new Promise<number>((resolve) => stream.on('response', (head) => resolve(Number(head[':status']))));
  stream.on('error', () => {});
  stream.resume();
  stream.end(Buffer.alloc(bytes, 'x'));
  return { status, closed: once(stream, 'close') };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an upstream that answered early and reads on gets the whole upload`, async (t) => {
    const { session, seen } = await startSlowReader(t, codec);
    t.equal(await upload(session).status, 202);
    await waitUntil(() => seen.rstCode !== undefined, 'the upstream stream closed', 10_000);
    t.equal(seen.got, TOTAL, 'the upstream read the whole upload');
    t.ok(seen.ended, 'ended whole (END_STREAM), not cut');
    t.equal(seen.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'no CANCEL');
  });

  t.test(`${codec} codec: a drain waits for such an upload still on its way, then the sidecar may stop`, async (t) => {
    const { session, seen, fx } = await startSlowReader(t, codec);
    const sent = upload(session);
    t.equal(await sent.status, 202);
    await sent.closed; // the exchange is whole on the app's side; the upload is not all upstream yet
    t.ok(seen.got < TOTAL, `the upload is still on its way (${seen.got} bytes read)`);
    t.equal(fx.outbound.inFlight, 1, 'and counted in flight');
    // as the sidecar's stop does: the drain, then the close of what is left
    await fx.outbound.drain(10_000);
    await fx.outbound.close();
    await waitUntil(() => seen.rstCode !== undefined, 'the upstream stream closed', 10_000);
    // all of it reached the upstream before the stop: what its app had not read yet when the
    // connection ended is Node's to drop (its server closes a stream at its connection's end,
    // buffered bytes and all; whether the last of them had been read by then is the upstream's
    // timing: a read every 100 ms here)
    t.equal(seen.received, TOTAL, `the upstream received the whole upload before the stop (${seen.got} read by its app)`);
    t.equal(seen.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'ended, not cut');
  });

  t.test(`${codec} codec: an upstream that answered early and stops reading lets the upload go out of flight at the idle timeout`, async (t) => {
    // reads nothing, ever; PINGs every 100 ms: Node's own stream timer starts again whenever its
    // session sends anything
    const { session, fx, seen } = await startSlowReader(t, codec, { perTick: 0, tuning: { idleTimeoutMs: 1_000, pingIntervalMs: 100 } });
    // small enough to leave the app whole (the window and one stream buffer hold it), never read
    const sent = upload(session, 30_000);
    t.equal(await sent.status, 202);
    await sent.closed;
    t.equal(fx.outbound.inFlight, 1, 'the upload still on its way is in flight');
    await waitUntil(() => fx.outbound.inFlight === 0, 'the stalled upload out of flight', 5_000).catch(() => undefined);
    t.equal(fx.outbound.inFlight, 0, 'out of flight once the upstream took nothing for the idle timeout');
    await waitUntil(() => seen.rstCode !== undefined, "the upstream's stream to close", 5_000).catch(() => undefined);
    t.equal(seen.rstCode, http2.constants.NGHTTP2_CANCEL, 'the upload cancelled, not ended');
    // the endpoint answered whole: the cancel is the upload's, not held against it
    t.same(fx.outbound.upstreams().flatMap((u) => u.addresses.map((a) => [a.state, a.failures])), [['ok', 0]], 'the endpoint is charged no failure');
  });

  // the meshcar codec counts each byte sent; Node's stream shows progress per written piece
  // (up to 16 KiB) only, which a reader this slow takes longer than the idle timeout to finish
  if (codec === 'meshcar') t.test(`${codec} codec: an upstream that answered early and still reads slowly when the idle timeout comes gets the whole upload`, async (t) => {
    // 1 KiB every 100 ms (the window holds no more): the 30,000 bytes take ~3 s, three idle timeouts
    const { session, fx, seen } = await startSlowReader(t, codec, { perTick: 1024, window: 1024, tuning: { idleTimeoutMs: 1_000, pingIntervalMs: 100 } });
    const sent = upload(session, 30_000);
    t.equal(await sent.status, 202);
    await waitUntil(() => seen.rstCode !== undefined, "the upstream's stream to close", 10_000);
    t.equal(seen.got, 30_000, 'all of it, read on past the idle timeout');
    t.equal(seen.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'ended, not cancelled');
    t.equal(fx.outbound.inFlight, 0);
  });
}
