// A caller that cancels its calls at their own deadline (grpc-timeout, x-request-timeout) is
// not a rapid-reset attacker: gRPC clients do so, and so does the outbound sidecar, whose clock
// starts before the inbound's and so resets a slow call just before the inbound's own
// DEADLINE_EXCEEDED. Every such cancel was premature (no head yet, under a second old), so a
// slow method called at ~20/s with a 300 ms deadline got the caller's whole connection closed
// (GOAWAY ENHANCE_YOUR_CALM), with its healthy streams. A reset past half the stream's
// deadline now counts in a budget of its own, ten times maxResetsPer10s; one before, or on a
// stream without one, counts as before. Both HTTP/2 codecs of the inbound, over real mTLS with
// Node's client. (The floor, no reset younger than 100 ms is the deadline's, and that budget's
// end are held in test/h2/limits.test.ts.)

import t from 'tap';
import http2 from 'node:http2';
import type { ServerResponse } from 'node:http';
import { h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;
const STREAMS = 30; // past maxResetsPer10s below

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: cancels at the call's deadline are not rapid resets`, async (t) => {
    const held: ServerResponse[] = [];
    const fx = await startInbound({
      codec,
      limits: { maxResetsPer10s: 20 },
      app: { protocol: 'http', handler: (req, res) => (req.url === '/ok' ? res.end('ok') : held.push(res)) },
    });
    t.teardown(async () => {
      for (const res of held) res.destroy();
      await fx.close();
    });

    /** STREAMS slow calls with `timeout` as grpc-timeout, each cancelled `afterMs` in (the caller's own deadline running out). */
    const cancelledCalls = async (timeout: string, afterMs: number) => {
      const session = await h2Connect(fx.port, await fx.tlsOptions());
      t.teardown(() => session.destroy());
      let goaway: number | undefined;
      session.on('goaway', (code: number) => (goaway = code));
      session.on('error', () => {});
      const streams = [];
      for (let i = 0; i < STREAMS; i++) {
        const stream = session.request({ ':method': 'POST', ':path': '/slow', 'content-type': 'application/grpc', 'grpc-timeout': timeout });
        stream.on('error', () => {});
        stream.end();
        streams.push(stream);
      }
      await new Promise((r) => setTimeout(r, afterMs));
      for (const stream of streams) stream.close(NGHTTP2_CANCEL);
      return { session, goaway: () => goaway };
    };

    const atDeadline = await cancelledCalls('400m', 250);
    const after = await h2Request(atDeadline.session, { ':method': 'GET', ':path': '/ok' });
    t.equal(after.status, 200, 'past half of a 400 ms deadline: the connection goes on serving');
    t.equal(atDeadline.goaway(), undefined, 'and got no GOAWAY');

    const early = await cancelledCalls('10S', 250);
    await new Promise<void>((resolve) => (early.session.closed ? resolve() : early.session.once('close', resolve)));
    t.equal(early.goaway(), NGHTTP2_ENHANCE_YOUR_CALM, 'well before a 10 s deadline: rapid resets, GOAWAY ENHANCE_YOUR_CALM');
  });
}
