// GET /upstreams of a running sidecar, for real: our CA, an upstream sidecar before an echo app,
// and a frontend sidecar whose upstreams mix a name (dns:localhost), an IP endpoint nothing
// listens on, and a name that never resolves (.invalid, RFC 6761). The view says which
// addresses each upstream reaches, which one is down after a connect failure (and until
// when), which one an outlier ejection keeps out (and until when), the sessions and streams
// on each, and the last failed lookup: what the metrics count without naming.

import t, { type Test } from 'tap';
import { startMeshCa, startSidecar, waitFor, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { startEchoApp, request, type TestApp } from '../helpers/apps.js';
import { freePort } from '../helpers/process.js';

interface AddressView {
  address: string;
  state: 'ok' | 'down' | 'ejected';
  downUntil?: string;
  ejectedUntil?: string;
  failures: number;
  sessions: number;
  streams: number;
}
interface UpstreamView {
  name: string;
  endpoints: string[];
  addresses: AddressView[];
  lastLookupFailure?: { host: string; message: string; time: string; failingNow: boolean };
}

const ORDERS_ID = 'spiffe://mesh.local/svc/orders';
let ca: MeshCa;
let app: TestApp;
let orders: RunningSidecar;
let frontend: RunningSidecar;
/** A port nothing listens on: every connection to it is refused. */
let refused: number;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  app = await startEchoApp();
  orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}` } });
  refused = await freePort();
  frontend = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [
      { name: 'orders', endpoints: [`dns:localhost:${orders.inboundPort}`, `127.0.0.1:${refused}`], identity: ORDERS_ID },
      // one failure ejects: the refused endpoint is ejected at its first connect failure
      { name: 'payments', endpoints: [`127.0.0.1:${orders.inboundPort}`, `127.0.0.1:${refused}`], identity: ORDERS_ID, outlierDetection: '{consecutiveFailures: 1, baseEjection: 60s}' },
      { name: 'inventory', endpoints: ['dns:inventory.invalid:8443'], identity: ORDERS_ID },
    ],
  });
});
t.teardown(async () => {
  await Promise.all([frontend?.stop('SIGKILL'), orders?.stop('SIGKILL')]);
  await ca?.stop();
  await app?.close();
});

async function view(path = '/upstreams'): Promise<UpstreamView[]> {
  const res = await frontend.admin(path);
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.body}`);
  return (JSON.parse(res.body) as { upstreams: UpstreamView[] }).upstreams;
}

const upstream = async (name: string) => (await view()).find((u) => u.name === name);
const addressOf = (u: UpstreamView | undefined, address: string) => u?.addresses.find((a) => a.address === address);

/** Requests to `host` until `done` holds of its view (the balancer picks the refused endpoint about half the time). */
async function requestUntil(t: Test, host: string, done: (u: UpstreamView | undefined) => boolean): Promise<UpstreamView | undefined> {
  let u: UpstreamView | undefined;
  for (let i = 0; i < 40 && !done((u = await upstream(host))); i++) t.equal((await request(frontend.outboundPort, { path: '/headers', headers: { host } })).status, 200, `request ${i + 1} to ${host} served`);
  return u;
}

t.test('the configured endpoints as written and the addresses a name resolved to', async (t) => {
  const all = await view();
  t.same(all.map((u) => u.name), ['orders', 'payments', 'inventory'], 'every upstream, in config order');
  const o = all[0];
  t.same(o?.endpoints, [`dns:localhost:${orders.inboundPort}`, `127.0.0.1:${refused}`], 'endpoints as written');
  const resolved = addressOf(o, `127.0.0.1:${orders.inboundPort}`);
  t.ok(resolved, `localhost resolved to 127.0.0.1 (${JSON.stringify(o?.addresses)})`);
  t.ok(addressOf(o, `127.0.0.1:${refused}`), 'the IP endpoint is listed as written');
  t.equal(resolved?.state, 'ok');
  t.equal(o?.lastLookupFailure, undefined, 'no lookup of localhost failed');
});

t.test('an endpoint whose port refuses connections is down after a request, until when', async (t) => {
  const before = Date.now();
  const o = await requestUntil(t, 'orders', (u) => addressOf(u, `127.0.0.1:${refused}`)?.state === 'down');
  const down = addressOf(o, `127.0.0.1:${refused}`);
  t.equal(down?.state, 'down', `the refused endpoint is down (${JSON.stringify(o?.addresses)})`);
  const until = Date.parse(down?.downUntil ?? '');
  // the backoff is 5 s from the failure
  t.ok(until > before && until <= Date.now() + 5_000, `downUntil within the 5 s backoff (${down?.downUntil})`);
  t.ok((down?.failures ?? 0) >= 1, 'its failure counted');
  t.equal(addressOf(o, `127.0.0.1:${orders.inboundPort}`)?.state, 'ok', 'the live address stays ok');
});

t.test('an ejected endpoint shows ejected, until when; sessions and streams per address', async (t) => {
  const p = await requestUntil(t, 'payments', (u) => addressOf(u, `127.0.0.1:${refused}`)?.state === 'ejected');
  const ejected = addressOf(p, `127.0.0.1:${refused}`);
  t.equal(ejected?.state, 'ejected', `the refused endpoint is ejected (${JSON.stringify(p?.addresses)})`);
  const until = Date.parse(ejected?.ejectedUntil ?? '');
  t.ok(until > Date.now() + 50_000 && until <= Date.now() + 60_000, `ejectedUntil about 60 s ahead (${ejected?.ejectedUntil})`);
  const live = addressOf(p, `127.0.0.1:${orders.inboundPort}`);
  t.same([live?.state, live?.sessions, live?.streams], ['ok', 1, 0], 'the live address: one session, no stream in flight');
  t.same([ejected?.sessions, ejected?.streams], [0, 0], 'none to the ejected one');

  // a request held by the app: one stream in flight on the live address
  const held = request(frontend.outboundPort, { path: '/slow?hold', headers: { host: 'payments', 'x-request-id': 'upstreams-held' } });
  let streams = 0;
  await waitFor(async () => (streams = addressOf(await upstream('payments'), `127.0.0.1:${orders.inboundPort}`)?.streams ?? 0) === 1, 3_000, 'the held request counted', frontend.process).catch(() => undefined);
  t.equal(streams, 1, 'one stream in flight while the app holds the request');
  app.release('upstreams-held');
  t.equal((await held).status, 200, 'the held request answered');
});

t.test("a name that does not resolve: no address, the lookup's failure and its time", async (t) => {
  const i = await upstream('inventory');
  t.same(i?.addresses, [], 'no address known');
  t.equal(i?.lastLookupFailure?.host, 'inventory.invalid');
  t.ok(i?.lastLookupFailure?.message, `why: ${i?.lastLookupFailure?.message}`);
  t.ok(Date.parse(i?.lastLookupFailure?.time ?? '') <= Date.now(), 'when');
  t.equal(i?.lastLookupFailure?.failingNow, true, 'still failing');
});

t.test('an unknown query: the view as usual; the 404 hint lists /upstreams', async (t) => {
  t.same((await view('/upstreams?format=yaml&x=1')).map((u) => u.name), ['orders', 'payments', 'inventory'], 'the query is ignored');
  const missing = await frontend.admin('/nope');
  t.equal(missing.status, 404);
  t.match(JSON.parse(missing.body).message, /\/upstreams/, 'the hint names /upstreams');
  // a sidecar without an outbound side: an empty list
  const res = await orders.admin('/upstreams');
  t.same([res.status, JSON.parse(res.body)], [200, { upstreams: [] }], 'no outbound: no upstreams');
});
