// An upstream that answers an h2c app's upload at once (202, END_STREAM) and reads the upload on,
// slowly: it gets all of it. The app's stream closes once our answer is out and its body has
// ended, while the last window of the upload is still on its way upstream; that close cancelled
// the upstream stream (a review: 180,111 of 200,000 bytes, then RST_STREAM CANCEL). Now a whole
// exchange's close lets the upload finish (an app that resets still cancels it: its reset sets
// the stream's code, which other files test). Both codecs; a
// real Node HTTP/2 upstream reading 32 KiB every 100 ms in paused mode.

import t from 'tap';
import http2 from 'node:http2';
import { startH2cAppToUpstream, waitUntil } from '../helpers/outbound-fixture.js';

const TOTAL = 200_000;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an upstream that answered early and reads on gets the whole upload`, async (t) => {
    const seen = { got: 0, ended: false, rstCode: undefined as number | undefined };
    const { session } = await startH2cAppToUpstream(t, codec, {
      settings: { initialWindowSize: 16384 },
      handler: (stream) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 202 }, { endStream: true });
        const tick = setInterval(() => {
          let n = 0;
          let chunk: Buffer | null;
          while (n < 32_768 && (chunk = stream.read() as Buffer | null) !== null) n += chunk.length;
          seen.got += n;
        }, 100);
        stream.on('readable', () => {}); // paused mode: read by the tick alone
        stream.on('end', () => (seen.ended = true));
        stream.on('close', () => {
          clearInterval(tick);
          seen.rstCode = stream.rstCode;
        });
      },
    });
    const stream = session.request({ ':method': 'POST', ':path': '/ingest', ':authority': 'payments' });
    const status = new Promise<number>((resolve) => stream.on('response', (head) => resolve(Number(head[':status']))));
    stream.on('error', () => {});
    stream.resume();
    stream.end(Buffer.alloc(TOTAL, 'x'));
    t.equal(await status, 202);
    await waitUntil(() => seen.rstCode !== undefined, 'the upstream stream closed', 10_000);
    t.equal(seen.got, TOTAL, 'the upstream read the whole upload');
    t.ok(seen.ended, 'ended whole (END_STREAM), not cut');
    t.equal(seen.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'no CANCEL');
  });
}
