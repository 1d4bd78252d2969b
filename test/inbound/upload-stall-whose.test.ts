// Whose stall an unfinished upload is, when nothing moves for the idle timeout and no answer
// came (exchange-deadlines.ts): the app's (504 upstream_timeout) while any byte the caller sent
// still waits for it, the caller's (408 request_timeout) only when the app has all of it. An h2c
// app that reads nothing takes its 65,535-byte window and leaves the rest of a 67,000-byte
// upload in the inbound's stream toward it: below the mark that pauses the caller's body, so a
// check of the body alone read it as the caller's stall (408, or 504, by timing; a review of
// 8b670f0). A caller that sends 5 bytes of a declared 100 to an app that reads them: 408.
// Both codecs; Node's HTTP/2 client over mutual TLS.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import { h2Connect, startInbound } from '../helpers/inbound-fixture.js';

async function stalledUpload(session: http2.ClientHttp2Session, path: string, sent: number, declared: number): Promise<{ status: number; error: string }> {
  const req = session.request({ ':method': 'POST', ':path': path, 'content-length': String(declared) });
  req.on('error', () => {});
  req.write(Buffer.alloc(sent, 97)); // and nothing more: the caller stalls
  const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
  req.resume();
  req.close();
  return { status: Number(head[':status']), error: String(head['x-meshcar-error']) };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: bytes still waiting for an h2c app that reads nothing make it the app's stall; all taken, the caller's`, async (t) => {
    const fx = await startInbound({
      codec,
      idleTimeoutMs: 400,
      app: {
        protocol: 'h2c',
        handler: (stream, headers) => {
          stream.on('error', () => {});
          // /read takes the body and waits for its end; /deaf reads nothing (its window shuts)
          if (headers[':path'] === '/read') stream.resume();
        },
      },
    });
    t.teardown(() => fx.close());
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.destroy());
    for (let i = 1; i <= 3; i++) {
      t.same(await stalledUpload(session, '/deaf', 67_000, 1_000_000), { status: 504, error: 'upstream_timeout' }, `deaf app ${i}: 504, the app's stall`);
      t.same(await stalledUpload(session, '/read', 5, 100), { status: 408, error: 'request_timeout' }, `reading app ${i}: 408, the caller's stall`);
    }
  });
}
