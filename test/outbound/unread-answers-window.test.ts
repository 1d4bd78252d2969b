// Answers that reached the outbound whole but that the app has not read yet still hold their
// share of the upstream session's receive window (their credit goes back only as they are
// read). The meshcar codec stopped counting such a stream once it had ended both ways, so the
// pool kept putting new streams on a session whose window was full of unread answers: a slow
// app with more than a window's worth (62.5 MiB) of unread downloads stalled every other app's
// requests to that upstream. Now a session takes at most the peer's SETTINGS_MAX_CONCURRENT_STREAMS
// of open and unread streams together (H2Connection.windowHolders), which its window holds.
// Here the peer allows 20 streams, and an h2c app opens 30 downloads it never reads (its
// stream window 0): each ends upstream with its body waiting; the 21st needs a second session.
// Both codecs (the node codec counts a stream until it is read).

import t from 'tap';
import http2 from 'node:http2';
import { makePki, request, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';

/** An outbound on `codec` toward an upstream taking `streams` streams a session, and an h2c app that reads no answer (its stream window 0). */
async function unreadingApp(t: Tap.Test, codec: 'meshcar' | 'node', streams: number) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki, { settings: { maxConcurrentStreams: streams } });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
  const app = http2.connect(`http://127.0.0.1:${fx.port}`, { settings: { initialWindowSize: 0 } });
  app.on('error', () => {});
  t.teardown(async () => {
    app.destroy();
    await fx.close();
    await upstream.close();
  });
  return { upstream, fx, app };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`downloads an app leaves unread count toward the session's streams (${codec})`, async (t) => {
    const { upstream, fx, app } = await unreadingApp(t, codec, 20);
    let ended = 0;
    upstream.server.on('stream', (stream) => stream.once('close', () => ended++));
    let heads = 0;
    const download = () => {
      const stream = app.request({ ':path': '/bytes/100000', ':authority': 'payments' }, { endStream: true });
      stream.on('error', () => {});
      stream.once('response', () => heads++);
      stream.pause();
      return stream;
    };
    const streams = Array.from({ length: 20 }, download);
    // the upstream sent them whole (each fits the outbound's stream window) and they ended there
    await waitUntil(() => heads === 20 && ended === 20, 'the first 20 answered in full upstream', 10_000);
    // after their last frames on the session: the outbound has read them all
    t.equal((await request(fx.port)).status, 200, "another app's request is answered");
    streams.push(...Array.from({ length: 10 }, download));
    await waitUntil(() => heads === 30, 'the app has all 30 heads', 10_000);
    t.equal(upstream.connections, 2, '30 unread downloads at 20 streams a session: two sessions');
    t.equal((await request(fx.port)).status, 200, "another app's request is answered meanwhile");
    // read, they hold nothing: the two sessions take 40 streams again
    let read = 0;
    app.settings({ initialWindowSize: 1 << 20 });
    for (const stream of streams) {
      stream.once('end', () => read++);
      stream.resume();
    }
    await waitUntil(() => read === 30, 'the app read all 30', 10_000);
    const more = Array.from({ length: 35 }, download);
    await waitUntil(() => heads === 65, 'the app has 35 more heads', 10_000);
    t.equal(upstream.connections, 2, 'once read, the 30 no longer count: 35 more fit the two sessions');
    for (const stream of more) stream.resume();
  });
}

// a peer allowing more streams than the session's receive window holds at a full stream window
// each (the meshcar codec's: 62.5 MiB, 250 × 256 KiB): credit comes back only as answers are
// read, so 250 unread downloads froze every other stream on the session (a hunt: an inbound at
// maxConcurrentStreams 1000, 300 stalled downloads, an ordinary 10 MB download and upload both
// timed out). A session now takes no more streams than its window holds; the pool opens
// another. Node's codec gives credit back as bytes arrive: not concerned.
t.test('a session takes no more streams than its receive window holds, whatever the peer allows (meshcar)', async (t) => {
  const { upstream, fx, app } = await unreadingApp(t, 'meshcar', 1000);
  let heads = 0;
  for (let i = 0; i < 255; i++) {
    const stream = app.request({ ':path': '/bytes/1000', ':authority': 'payments' }, { endStream: true });
    stream.on('error', () => {});
    stream.once('response', () => heads++);
    stream.pause();
  }
  await waitUntil(() => heads === 255, 'the app has all 255 heads', 20_000);
  t.equal(upstream.connections, 2, '255 unread downloads, a window for 250: two sessions');
  t.equal((await request(fx.port)).status, 200, "another app's request is answered meanwhile");
});
