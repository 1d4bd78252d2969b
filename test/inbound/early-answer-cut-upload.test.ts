// An HTTP/1.1 app that answers 413 as soon as it has a request's head, while a big upload is
// still coming through the pair (app → outbound → inbound → app): the inbound's client cuts that
// app connection (an answer before the request's end), so nobody reads the rest of the caller's
// body. The inbound must still end its HTTP/2 stream at once (RST_STREAM NO_ERROR after the
// answer) and record the exchange. On http2.codec node it did not: Node's stream closes only
// once its readable side has ended, and the body, left half-read in its buffer, never ended;
// each such request held its exchange, and a stream of the calling sidecar's session, until
// the idle timeout (5 min by default). Both codecs; a raw TCP app, a real outbound and inbound.

import t from 'tap';
import http from 'node:http';
import { SERVER_ID, startInbound } from '../helpers/inbound-fixture.js';
import { startOutbound } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { startRawApp } from '../helpers/raw-http.js';

function post(port: number, path: string, body: Buffer, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { host: 'orders', 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: an early 413 to a big upload ends the inbound's exchange at once`, async (t) => {
    // answers every head at once, keeps the connection, never reads a body as one
    const app = await startRawApp((_request, socket) => socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\n\r\ntoo big'));
    const fx = await startInbound({ externalApp: { protocol: 'http', port: app.port }, codec });
    t.teardown(async () => {
      await fx.close();
      await app.close();
    });
    const out = await startOutbound(fx.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${fx.port}`], identity: SERVER_ID }], { codec });
    t.teardown(() => out.close());
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.teardown(() => agent.destroy());

    const upload = Buffer.alloc(4 * 1024 * 1024, 97);
    for (let i = 1; i <= 3; i++) {
      const res = await post(out.port, `/upload/${i}`, upload, agent);
      t.same(res, { status: 413, body: 'too big' }, `upload ${i}: the app's answer`);
    }
    await waitFor(async () => fx.inbound.inFlight === 0, 2_000, 'the inbound exchanges to end').catch(() => undefined);
    t.equal(fx.inbound.inFlight, 0, 'no exchange left in flight');
    t.same(
      fx.observer.requests.map((r) => [r.path, r.status, r.errorCode ?? null]),
      [1, 2, 3].map((i) => [`/upload/${i}`, 413, null]),
      'each recorded as answered',
    );
  });
}
