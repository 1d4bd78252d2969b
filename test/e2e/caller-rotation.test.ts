// A caller's own rotation under load, for real: `billing` (outbound) on 6-second SVIDs renewing
// at 30 % of their life calls `orders` (inbound, an hour-long SVID) with four POSTs always in
// flight, each answered by the app after 600 ms. The inbound ends a connection when the
// certificate it was opened with expires, streams and all; so the outbound, once it holds a
// new certificate, sends new requests on new sessions and lets the old ones finish and close.
// It kept using the old sessions: at each old certificate's end the POSTs in flight were
// answered 502 upstream_reset (8 in 14 s, seen), after the app had run them. Both codecs.

import t from 'tap';
import { startSidecar, metricValue } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

const mesh = meshFixture(t);
// the two codecs' runs side by side: each mostly waits for its renewals (6 s SVIDs)
t.jobs = 2;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a caller's renewals lose no request in flight`, async (t) => {
    const orders = await startSidecar(mesh.ca, { service: `orders-${codec}`, inbound: { app: `http://127.0.0.1:${mesh.app.port}`, timeout: '10s' }, ttl: '1h', codec });
    t.teardown(() => orders.stop('SIGKILL'));
    const billing = await startSidecar(mesh.ca, {
      service: `billing-${codec}`,
      upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: `spiffe://mesh.local/svc/orders-${codec}`, timeout: '10s' }],
      ttl: '6s',
      renewal: '{from: 0.3, to: 0.3}',
      codec,
    });
    t.teardown(() => billing.stop('SIGKILL'));
    const renewals = async () => metricValue((await billing.admin('/metrics')).body, 'meshcar_identity_renewals_total{result="success"}') ?? 0;

    // four POSTs always in flight until billing has renewed three times (two old certificates
    // expired under load by then), at most 30 s
    const failures: string[] = [];
    let answered = 0;
    let done = false;
    const until = Date.now() + 30_000;
    const caller = async (startAfterMs: number) => {
      await new Promise((resolve) => setTimeout(resolve, startAfterMs));
      while (!done && Date.now() < until) {
        const res = await request(billing.outboundPort, { method: 'POST', path: '/slow?ms=600', headers: { host: 'orders' }, body: 'x' }).catch((err: Error) => ({ status: 0, body: Buffer.from(err.message) }));
        if (res.status === 200) answered++;
        else failures.push(`${res.status} ${res.body.toString().slice(0, 160)}`);
      }
    };
    const callers = [0, 150, 300, 450].map(caller);
    while (Date.now() < until && (await renewals()) < 3) await new Promise((resolve) => setTimeout(resolve, 100));
    // and past the end of the last certificate replaced
    await new Promise((resolve) => setTimeout(resolve, 4500));
    done = true;
    await Promise.all(callers);
    t.ok((await renewals()) >= 3, `billing renewed ${await renewals()} times under load`);
    t.same(failures, [], `every POST answered 200 (${answered})`);
    const ordersMetrics = (await orders.admin('/metrics')).body;
    t.notOk(/meshcar_request_errors_total\{[^}]*reason="reset"/.test(ordersMetrics), 'the callee saw no exchange cut');
  });
}
