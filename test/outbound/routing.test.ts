// Routing on the outbound port: the upstream is the host the app wrote (Host, :authority, or
// an absolute-form URI), port left off, any case; anything else is a 404 no_route that names
// the request id, on HTTP/1.1 and on h2c alike. Every request is reported to the observer.

import t from 'tap';
import http2 from 'node:http2';
import { makePki, request, startOutbound, startUpstream, h2cRequest, UPSTREAM_ID, TD } from '../helpers/outbound-fixture.js';

t.test('routing by Host, absolute-form URI and :authority', async (t) => {
  const pki = await makePki(TD);
  const payments = await startUpstream(pki);
  const ledgerId = `spiffe://${TD}/svc/ledger`;
  const ledger = await startUpstream(pki, { id: ledgerId });
  const fx = await startOutbound(pki, [
    { name: 'payments', endpoints: [`127.0.0.1:${payments.port}`], identity: UPSTREAM_ID },
    { name: 'ledger.prod.svc', endpoints: [`127.0.0.1:${ledger.port}`], identity: ledgerId },
    { name: '127.0.0.1', endpoints: [`127.0.0.1:${ledger.port}`], identity: ledgerId },
  ]);
  t.teardown(async () => {
    await fx.close();
    await payments.close();
    await ledger.close();
  });

  t.test('Host picks the upstream; port and case do not matter', async (t) => {
    const plain = await request(fx.port, { headers: { host: 'payments' }, path: '/echo?x=1' });
    t.equal(plain.status, 200);
    t.equal(plain.json().callerId, `spiffe://${TD}/svc/frontend`, 'reached payments over mTLS as the app identity');
    t.equal(plain.json().path, '/echo?x=1', 'path and query travel unchanged');
    t.equal(plain.json().authority, 'payments', "the app's Host is the :authority upstream");
    t.equal(payments.requests, 1);

    const shouting = await request(fx.port, { headers: { host: 'PayMents:8080' } });
    t.equal(shouting.status, 200);
    t.equal(payments.requests, 2, 'mixed case with a port is the same upstream');
    t.equal(shouting.json().authority, 'PayMents:8080', 'the Host is kept as written');

    const dotted = await request(fx.port, { headers: { host: 'Ledger.Prod.Svc' } });
    t.equal(dotted.status, 200);
    t.equal(ledger.requests, 1, 'a dotted name');
    const ip = await request(fx.port, { headers: { host: '127.0.0.1:9' } });
    t.equal(ip.status, 200);
    t.equal(ledger.requests, 2, 'even an IP literal is a name');
  });

  t.test('absolute-form URI (HTTP proxy style) wins over Host', async (t) => {
    const res = await request(fx.port, { path: 'http://LEDGER.prod.svc:80/charges/42?expand=1', headers: { host: 'nowhere' } });
    t.equal(res.status, 200);
    t.equal(res.json().path, '/charges/42?expand=1', 'origin-form path upstream');
    t.equal(res.json().authority, 'LEDGER.prod.svc:80');
    const bare = await request(fx.port, { path: 'http://payments', headers: { host: 'nowhere' } });
    t.equal(bare.status, 200);
    t.equal(bare.json().path, '/', 'an empty path is /');
  });

  t.test('unknown host → 404 no_route, JSON with the request id and x-meshcar-error', async (t) => {
    const res = await request(fx.port, { headers: { host: 'nowhere', 'x-request-id': 'req-404' } });
    t.equal(res.status, 404);
    t.equal(res.headers['x-meshcar-error'], 'no_route');
    t.equal(res.headers['content-type'], 'application/json');
    // and how to name one: a first `curl http://127.0.0.1:15001/` names the sidecar's own address
    t.same(res.json<object>(), { error: 'no_route', message: 'no upstream is named "nowhere": the request\'s Host (or its absolute URL) names the upstream; send Host: <a name under outbound.upstreams>', requestId: 'req-404' });
    const prefix = await request(fx.port, { headers: { host: 'payments.evil' } });
    t.equal(prefix.status, 404, 'names match whole, not by prefix');
    const generated = await request(fx.port, { headers: { host: 'nowhere' } });
    t.match(generated.json<{ requestId: string }>().requestId, /^[0-9a-f-]{36}$/, 'a request id is made when absent');
  });

  t.test('h2c: :authority routes the same way', async (t) => {
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    t.teardown(() => session.close());
    const ok = await h2cRequest(session, { ':path': '/echo', ':authority': 'PAYMENTS:1234' });
    t.equal(ok.status, 200);
    t.equal(JSON.parse(ok.body.toString()).authority, 'PAYMENTS:1234');
    const missing = await h2cRequest(session, { ':path': '/echo', ':authority': 'ghost' });
    t.equal(missing.status, 404);
    t.equal(missing.headers['x-meshcar-error'], 'no_route');
    t.equal(JSON.parse(missing.body.toString()).error, 'no_route');
  });

  t.test('the observer hears of every request', async (t) => {
    const before = fx.observer.requests.length;
    await request(fx.port, { path: '/echo/7?secret=1', headers: { host: 'payments', 'x-request-id': 'obs-1' } });
    await request(fx.port, { path: '/x', headers: { host: 'nowhere', 'x-request-id': 'obs-2' } });
    const records = (await fx.observer.waitForRequests(before + 2)).slice(before);
    t.match(records[0], { direction: 'outbound', peer: 'payments', method: 'GET', path: '/echo/7', status: 200, requestId: 'obs-1', endpoint: `127.0.0.1:${payments.port}` });
    t.equal(records[0]?.errorCode, undefined);
    t.ok((records[0]?.durationSeconds ?? -1) > 0);
    t.match(records[1], { peer: 'unknown', status: 404, errorCode: 'no_route', requestId: 'obs-2' });
  });
});
