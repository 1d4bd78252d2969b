// An upstream head that ends its stream while announcing content (a 205 with the app's
// Content-Length, as a peer that relays it as it came sends it): the stream is malformed (RFC
// 9113 §8.1.1) and refused before its head is handed on, so the app gets our 502 with its JSON
// body. Handed on first, the app had the head written and then its connection cut: an empty
// reply (curl: 52), while the node codec already answered 502.

import t from 'tap';
import { makePki, request, startOutbound, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';

const UPSTREAM_ID = `spiffe://${TD}/svc/payments`;

const resetContentWithLength: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.respond({ ':status': 205, 'content-length': '13' }, { endStream: true });
};

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a head with END_STREAM and a content-length above 0 is a 502, not an empty reply`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startUpstream(pki, { handler: resetContentWithLength });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], identity: UPSTREAM_ID }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const res = await request(fx.port);
    t.equal(res.status, 502, 'our 502');
    t.equal(JSON.parse(res.body.toString()).error, res.headers['x-meshcar-error'], 'with its JSON body');
  });
}
