// An h2c app's upload still coming when the upstream has answered it in full, and the upstream
// neither reads the rest nor resets its stream (a meshcar inbound resets with NO_ERROR; an HTTP/2
// server need not): the app's stream, its record and an upstream stream slot were held until the
// upstream's idleTimeout (5 min), the upload waiting behind flow control (a review). Now an upload
// that moves no byte for a second while the upstream holds it is let go, as on the HTTP/1.1 side:
// the upstream stream is cancelled and the rest read and dropped, so the app's stream completes.
// Answers with a body and head-only answers, both codecs; a real Node HTTP/2 upstream with an
// 8 KiB stream window that pauses the body after its first bytes.

import t from 'tap';
import http2 from 'node:http2';
import { makePki, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';

const FIRST = Buffer.alloc(20_000, 'f');
const REST = Buffer.alloc(100_000, 'r');

/** `p`, or a failure naming `what` after 5 s. */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within 5 s`)), 5000)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

for (const codec of ['meshcar', 'node'] as const) {
  for (const answer of ['a body', 'its head alone'] as const) {
    t.test(`${codec} codec: an upstream that answered with ${answer} and stops reading the upload lets the app's stream complete`, async (t) => {
      const pki = await makePki(TD);
      const upstream = await startUpstream(pki, {
        settings: { initialWindowSize: 8192 },
        handler: (stream, headers) => {
          stream.on('error', () => {});
          if (headers[':path'] === '/next') {
            stream.respond({ ':status': 200 });
            stream.end('next');
            return;
          }
          // answered in full after the body's first bytes, the rest never read (paused, not
          // consumed: Node resets a stream whose body nobody reads once its answer is out)
          stream.on('data', () => {
            if (stream.headersSent) return;
            stream.pause();
            if (answer === 'a body') {
              stream.respond({ ':status': 200 });
              stream.end('taken');
            } else stream.respond({ ':status': 204 }, { endStream: true });
          });
        },
      });
      const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
      const session = http2.connect(`http://127.0.0.1:${fx.port}`);
      session.on('error', () => {});
      t.teardown(async () => {
        session.destroy();
        await fx.close();
        await upstream.close();
      });
      const stream = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'payments' });
      const status = new Promise<number>((resolve, reject) => {
        stream.on('response', (head) => {
          // the rest of the upload comes after the answer, as an app streaming it would send it
          stream.end(REST);
          resolve(Number(head[':status']));
        });
        stream.on('error', reject);
      });
      const closed = new Promise<number | undefined>((resolve) => stream.on('close', () => resolve(stream.rstCode)));
      stream.resume();
      stream.write(FIRST);
      t.equal(await within(status, 'the answer'), answer === 'a body' ? 200 : 204);
      t.equal(await within(closed, "the app's stream closing (its upload let go)"), http2.constants.NGHTTP2_NO_ERROR, 'closed without a reset');
      await waitUntil(() => fx.observer.streams.get('payments') === 0, 'the upstream stream released', 3000);
      await fx.observer.waitForRequests(1);
      t.equal(fx.observer.requests.length, 1, 'the request recorded');
      t.equal(fx.observer.requests[0]?.status, answer === 'a body' ? 200 : 204, "with the upstream's status");
      const next = session.request({ ':method': 'GET', ':path': '/next', ':authority': 'payments' });
      next.end();
      next.resume();
      const nextStatus = await within(new Promise<number>((resolve) => next.on('response', (h) => resolve(Number(h[':status'])))), 'the next request on the session');
      t.equal(nextStatus, 200, 'the session serves the next request');
    });
  }
}
