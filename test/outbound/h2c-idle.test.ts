// An app's h2c connection to the outbound with no stream open for the keep-alive time is
// closed with GOAWAY (src/outbound/h2c-idle.ts), as an idle HTTP/1.1 connection is; one whose
// only stream is quiet but open is not. Before, an h2c connection lived until the sidecar
// stopped. A Node h2c client, the outbound, a real mTLS upstream; the keep-alive time is 300 ms.

import t from 'tap';
import http2 from 'node:http2';
import { makePki, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

async function setup(t: Tap.Test) {
  const pki = await makePki('mesh.test');
  const upstream = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { keepAliveTimeoutMs: 300 });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const client = http2.connect(`http://127.0.0.1:${fx.port}`);
  t.teardown(() => client.destroy());
  let goawayAt = 0;
  client.on('goaway', () => (goawayAt = Date.now()));
  client.on('error', () => undefined);
  const get = (path: string) =>
    new Promise<{ status: number; endedAt: number }>((resolve, reject) => {
      const req = client.request({ ':path': path, ':authority': 'payments' });
      let status = 0;
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('error', reject);
      req.on('end', () => resolve({ status, endedAt: Date.now() }));
      req.resume();
    });
  return { client, get, goawayAt: () => goawayAt };
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: an idle h2c connection gets GOAWAY after the keep-alive time`, async (t) => {
    const { client, get, goawayAt } = await setup(t);
    const { status, endedAt } = await get('/echo');
    t.equal(status, 200);
    await waitFor(async () => goawayAt() > 0, 5000, 'GOAWAY on the idle connection');
    t.ok(goawayAt() - endedAt >= 250, `not before the keep-alive time (${goawayAt() - endedAt} ms)`);
    await waitFor(async () => client.closed || client.destroyed, 5000, 'the connection closed');
  });

  t.test(`codec ${codec}: a connection whose one stream is quiet but open is kept`, async (t) => {
    const { get, goawayAt } = await setup(t);
    // the upstream answers after 1.2 s: four keep-alive times with no frame either way
    const { status, endedAt } = await get('/slow/1200');
    t.equal(status, 200);
    t.ok(goawayAt() === 0 || goawayAt() >= endedAt, 'no GOAWAY while the stream was open');
    await waitFor(async () => goawayAt() > 0, 5000, 'GOAWAY once it is idle');
  });
}
