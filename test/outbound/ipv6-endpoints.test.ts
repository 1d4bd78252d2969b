// IPv6 endpoints on both HTTP/2 codecs: one written `[::1]:PORT`, and a name whose answers mix
// ::1 and 127.0.0.1. With `http2.codec: node` the first session to an IPv6 address threw
// Invalid URL from http2-wrapper's SETTINGS listener (the origin `https://::1:PORT` made from
// the bare remote address): an uncaught exception, the sidecar's end. Now every request is
// served, and the answers' addresses share the traffic.

import t from 'tap';
import { makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import type { LookupAll } from '../../src/outbound/index.js';

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: [::1]:PORT, and a name answering ::1 and 127.0.0.1`, async (t) => {
    const pki = await makePki(TD);
    const v6 = await startUpstream(pki, { host: '::1' });
    const v4 = await startUpstream(pki, { host: '127.0.0.1', port: v6.port });
    const lookup: LookupAll = async () => [
      { address: '::1', family: 6 },
      { address: '127.0.0.1', family: 4 },
    ];
    const fx = await startOutbound(
      pki,
      [
        { name: 'payments', endpoints: [`[::1]:${v6.port}`] },
        { name: 'orders', endpoints: [`dns:orders.internal:${v6.port}`] },
      ],
      { codec, lookup },
    );
    t.teardown(async () => {
      await fx.close();
      await v6.close();
      await v4.close();
    });
    for (let i = 0; i < 3; i++) t.equal((await request(fx.port)).status, 200, 'the [::1] endpoint serves');
    t.equal(v6.requests, 3);
    // together, so power of two choices spreads them (one at a time may all go to the faster one)
    const statuses = await Promise.all(Array.from({ length: 20 }, () => request(fx.port, { headers: { host: 'orders' } }).then((r) => r.status)));
    t.same(statuses, Array(20).fill(200), 'every request to the mixed name is served');
    t.ok(v6.requests > 3 && v4.requests > 0, `both addresses take traffic (::1 ${v6.requests - 3}, 127.0.0.1 ${v4.requests})`);
    const records = await fx.observer.waitForRequests(23);
    t.ok(records.some((r) => r.endpoint === `[::1]:${v6.port}`), 'the IPv6 endpoint is labelled [::1]:PORT');
  });
}
