// An h2c app that answers an upload at once without reading it, with a head alone (a 401,
// END_STREAM on its HEADERS): Node's http2 server then resets the stream with NO_ERROR by itself. When the caller's whole upload
// had already reached the inbound (200,000 bytes: within the inbound's window, over the app's),
// the inbound's stream toward the app never closed (Node waits for an upload to finish before
// it lets a stream reset with NO_ERROR go), so the exchange stayed in flight and unrecorded
// until the idle timeout, then was recorded as a reset although the caller had its whole 401.
// Now it is recorded at once with the app's status, and the app's stream slot is free again.
// Both codecs; Node's HTTP/2 client as the caller over mutual TLS.

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import { h2Connect, startInbound } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

const UPLOAD = Buffer.alloc(200_000, 97);

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: an upload the h2c app answers without reading is recorded at once, its slot freed`, async (t) => {
    let handled = 0;
    // (the same answer with a body did not show it in this test)
    const fx = await startInbound({
      codec,
      idleTimeoutMs: 60_000, // far beyond the waits below: only the idle timeout ended such an exchange
      app: {
        protocol: 'h2c',
        handler: (stream) => {
          handled++;
          stream.on('error', () => {});
          stream.respond({ ':status': 401 }, { endStream: true });
        },
      },
    });
    t.teardown(() => fx.close());
    const session = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => session.destroy());
    for (let i = 1; i <= 3; i++) {
      const req = session.request({ ':method': 'POST', ':path': `/upload/${i}`, 'content-length': String(UPLOAD.length) });
      req.on('error', () => {});
      req.end(UPLOAD);
      const [head] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      await once(req, 'end');
      t.same([head[':status'], body], [401, ''], `upload ${i}: the app's answer, whole`);
      await waitFor(async () => fx.observer.requests.length === i && fx.inbound.inFlight === 0, 3_000, `upload ${i} recorded and out of flight`).catch(() => undefined);
      t.equal(fx.inbound.inFlight, 0, `upload ${i}: nothing left in flight`);
      t.same(fx.observer.requests.slice(-1).map((r) => [r.path, r.status, r.errorCode ?? null]), [[`/upload/${i}`, 401, null]], `upload ${i}: recorded with the app's status`);
    }
    t.equal(handled, 3, 'the app saw each upload');
  });
}
