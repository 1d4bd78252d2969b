// An endpoint's rest after a connect failure, and an outlier's ejection, end by the running
// time, whatever the wall clock does (both codecs). The rest was kept as a wall-clock deadline
// (Date.now() + endpointBackoffMs): a clock stepped back an hour (NTP, a VM restored from a
// snapshot) kept an endpoint that was back up out of the rotation for that hour, and GET
// /upstreams said it was down until an hour ahead. The test moves this process's Date
// (helpers/movable-clock.ts); sockets and TLS are real.

import t from 'tap';
import { performance } from 'node:perf_hooks';
import { makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { movableClock } from '../helpers/movable-clock.js';
import { freePort } from '../helpers/process.js';
import type { UpstreamAddressView } from '../../src/outbound/upstreams-view.js';

const HOUR = 3_600_000;
const BACKOFF_MS = 1000;

type Outbound = Awaited<ReturnType<typeof startBalanced>>['outbound'];
const addressOf = (outbound: Outbound, port: number): UpstreamAddressView | undefined => outbound.upstreams()[0]?.addresses.find((a) => a.address === `127.0.0.1:${port}`);

/** Requests, one at a time, until `done` holds, at most `timeoutMs` of running time (which a moved Date does not move). */
async function requestUntil(port: number, done: () => boolean, timeoutMs: number): Promise<number[]> {
  const statuses: number[] = [];
  const deadline = performance.now() + timeoutMs;
  while (!done() && performance.now() < deadline) statuses.push((await request(port, { path: '/x' })).status);
  return statuses;
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an endpoint back up after a refused connect is used again after its backoff, the wall clock stepped back an hour`, async (t) => {
    const pki = await makePki(TD);
    const hits = { a: 0, b: 0 };
    // A: refuses connections at first; B answers, slowly, so that A wins the balancer once it may be picked
    const aPort = await freePort();
    const b = await startUpstream(pki, { handler: (s) => void (hits.b++, setTimeout(() => s.respond({ ':status': 200 }, { endStream: true }), 300)) });
    const fx = await startBalanced(pki, { ports: [aPort, b.port], codec, outlierDetection: { consecutiveFailures: 0, baseEjectionMs: 30_000, maxEjectionMs: 60_000, maxEjectionPercent: 50 }, tuning: { endpointBackoffMs: BACKOFF_MS } });
    t.teardown(async () => {
      await fx.close();
      await b.close();
    });
    const marked = await requestUntil(fx.port, () => addressOf(fx.outbound, aPort)?.state === 'down', 10_000);
    t.equal(addressOf(fx.outbound, aPort)?.state, 'down', `A is down after a refused connect (${marked.length} requests)`);
    t.ok(marked.every((s) => s === 200), 'each request failed over to B');

    const a = await startUpstream(pki, { port: aPort, handler: (s) => void (hits.a++, s.respond({ ':status': 200 }, { endStream: true })) });
    t.teardown(() => a.close());
    const clock = movableClock();
    t.teardown(clock.restore);
    clock.offset.ms = -HOUR;
    const view = addressOf(fx.outbound, aPort);
    const left = Date.parse(view?.downUntil ?? '') - Date.now();
    t.ok(left > 0 && left <= BACKOFF_MS, `GET /upstreams: down until within the backoff of the moved clock (${left} ms left, ${view?.downUntil})`);

    hits.a = 0;
    hits.b = 0;
    const served = await requestUntil(fx.port, () => hits.a > 0, 5 * BACKOFF_MS);
    t.ok(hits.a > 0, `A serves again within 5 backoffs of running time (${served.length} requests before: ${served.join(',')}; A ${hits.a}, B ${hits.b})`);
    t.equal(addressOf(fx.outbound, aPort)?.state, 'ok', 'and shows ok');
  });

  t.test(`${codec} codec: an ejected endpoint's re-admission time is shown right after the wall clock steps back an hour`, async (t) => {
    const pki = await makePki(TD);
    const refused = await freePort();
    const live = await startUpstream(pki);
    const fx = await startBalanced(pki, { ports: [refused, live.port], codec, outlierDetection: { consecutiveFailures: 1, baseEjectionMs: 60_000, maxEjectionMs: 60_000, maxEjectionPercent: 50 } });
    t.teardown(async () => {
      await fx.close();
      await live.close();
    });
    await requestUntil(fx.port, () => addressOf(fx.outbound, refused)?.state === 'ejected', 10_000);
    t.equal(addressOf(fx.outbound, refused)?.state, 'ejected', 'the refusing endpoint is ejected');
    const clock = movableClock();
    t.teardown(clock.restore);
    clock.offset.ms = -HOUR;
    const view = addressOf(fx.outbound, refused);
    const left = Date.parse(view?.ejectedUntil ?? '') - Date.now();
    t.ok(left > 50_000 && left <= 60_000, `ejectedUntil about 60 s ahead of the moved clock (${left} ms left, ${view?.ejectedUntil})`);
  });
}
