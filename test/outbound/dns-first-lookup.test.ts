// Requests that come while no address of their upstream is known (its names' first lookup
// still running, or failed): they wait for the lookup at most their timeout, 10 s even with
// `timeout: 0` (not the connect bound: a lookup is no dial), and no longer than their app does
// (its `pending` place is freed at once); the 503 says why no address is known. They used to
// wait on the lookup itself, as long as getaddrinfo took, with their place in `pending` held
// after the app had left.

import t from 'tap';
import { performance } from 'node:perf_hooks';
import { makePki, request, startOutbound, TD, type OutboundFixture } from '../helpers/outbound-fixture.js';
import type { LookupAll } from '../../src/outbound/index.js';
import type { UpstreamPool } from '../../src/outbound/upstream-pool.js';
import { waitFor } from '../helpers/movable-clock.js';

const poolOf = (fx: OutboundFixture): UpstreamPool => (fx.outbound as unknown as { router: { lookup(name: string): UpstreamPool } }).router.lookup('payments');

t.test('a lookup that never answers: 10 s at most, even with timeout 0; an app that leaves frees its place', async (t) => {
  // the lookup below never settles and the outbound's timers are unref'd: this keeps the test alive
  const alive = setInterval(() => {}, 1000);
  const lookup: LookupAll = () => new Promise(() => {});
  const pki = await makePki(TD);
  const listening = performance.now();
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: ['dns:payments.internal:443'], timeoutMs: 0 }], { lookup });
  const listenTook = performance.now() - listening;
  // the README's start: the port opens after at most 2 s of waiting for the first answers
  t.ok(listenTook >= 1900 && listenTook < 5000, `the outbound listens after waiting 2 s for the lookup (${Math.round(listenTook)} ms)`);
  t.teardown(async () => {
    clearInterval(alive);
    await fx.close();
  });
  const pool = poolOf(fx);
  t.equal(pool.lookupWaitMs, 10_000, 'timeout 0: the wait for a lookup is 10 s');
  // the bound shortened, as a 400ms timeout would make it, so the test does not wait 10 s
  pool.lookupWaitMs = 400;
  const started = performance.now();
  const res = await request(fx.port);
  const took = performance.now() - started;
  t.equal(res.status, 503);
  t.equal(res.headers['x-meshcar-error'], 'upstream_unavailable');
  t.match(res.json<{ message: string }>().message, /no address is known for upstream payments \(the lookup of payments\.internal has not answered yet\)/);
  t.ok(took >= 350 && took < 3000, `answered at the bound (${Math.round(took)} ms)`);

  pool.lookupWaitMs = 10_000;
  const controller = new AbortController();
  const left = request(fx.port, { signal: controller.signal }).catch(() => 'left');
  t.ok(await waitFor(() => pool.pending === 1, 2000), 'the request waits for the lookup');
  controller.abort();
  t.equal(await left, 'left');
  t.ok(await waitFor(() => pool.pending === 0, 2000), `its place in pending is freed once the app left (pending ${pool.pending})`);
});

t.test("a lookup still running when the request's timeout ends: 503 saying so, not 504", async (t) => {
  // the wait for the lookup is the timeout: the request's own deadline fired at the same
  // moment and answered 504 "payments did not answer", blaming an upstream never asked
  const alive = setInterval(() => {}, 1000);
  const lookup: LookupAll = () => new Promise(() => {});
  const fx = await startOutbound(await makePki(TD), [{ name: 'payments', endpoints: ['dns:payments.internal:443'], timeoutMs: 600 }], { lookup });
  t.teardown(async () => {
    clearInterval(alive);
    await fx.close();
  });
  for (let i = 0; i < 4; i++) {
    const res = await request(fx.port);
    t.equal(res.status, 503, `request ${i + 1}: 503`);
    t.match(res.json<{ message: string }>().message, /no address is known for upstream payments \(the lookup of payments\.internal has not answered yet\)/);
  }
});

t.test('a first lookup that failed: the 503 says which name and why', async (t) => {
  const lookup: LookupAll = async (name) => {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  };
  const fx = await startOutbound(await makePki(TD), [{ name: 'payments', endpoints: ['dns:payments.internal:443'] }], { lookup, dnsRefreshMs: 60_000 });
  t.teardown(() => fx.close());
  const res = await request(fx.port);
  t.equal(res.status, 503);
  t.match(res.json<{ message: string }>().message, 'no address is known for upstream payments (the lookup of payments.internal failed: getaddrinfo ENOTFOUND payments.internal)');
});
