// A request whose wait on one endpoint passes its bound (connect timeout × 4) leaves that
// endpoint for good, on both codecs: the session layer below stops for it (no dial on, and no
// request head sent when the session comes after all), so a POST the failover sent elsewhere
// reaches one endpoint only; and the waiters that gave up on the same dial together are one
// failure of the endpoint, not one each (an outlier ejection at consecutiveFailures 3).
//
// How a wait outlives its bound while the request's deadline runs on: S's dial is held (the
// TCP gate keeps its connection unanswered) under a 20 s timeout; the POSTs start under that
// timeout too, waiting on H's held dial; a reload then sets the timeout to 200 ms (bound
// 800 ms) and H's dial is reset: the POSTs fail over to S and join its held dial with the new
// bound, and their deadline is still the 20 s they started with. After the bound they are
// retried on H (relaying by then); S's dial is let through only after that.

import t from 'tap';
import type { UpstreamConfig } from '../../src/config/outbound-config.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import { createOutbound } from '../../src/outbound/index.js';
import { appIdentity, defaultHandler, makePki, request, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { HealthObserver } from '../helpers/outbound-balance-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startModeGate, waitFor } from '../helpers/mode-gate.js';

const VICTIMS = 4;

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a wait past its bound sends nothing to the endpoint it left, and counts once`, async (t) => {
    const pki = await makePki(TD);
    const posts = { s: 0, h: 0 };
    const upS = await startUpstream(pki, { handler: (stream, headers, flags) => ((posts.s += headers[':method'] === 'POST' ? 1 : 0), defaultHandler(stream, headers, flags)) });
    const upH = await startUpstream(pki, { handler: (stream, headers, flags) => ((posts.h += headers[':method'] === 'POST' ? 1 : 0), defaultHandler(stream, headers, flags)) });
    const s = await startModeGate(upS.port, 'hold');
    const h = await startModeGate(upH.port, 'reset');
    const config = (timeoutMs: number): UpstreamConfig[] => [
      {
        name: 'payments',
        endpoints: [s.port, h.port].map((port) => parseEndpoint(`127.0.0.1:${port}`) as Endpoint),
        identity: UPSTREAM_ID,
        timeoutMs,
        routes: [],
        outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 30_000, maxEjectionMs: 60_000, maxEjectionPercent: 100 },
      },
    ];
    const lines: Array<Record<string, unknown>> = [];
    const observer = new HealthObserver();
    const outbound = createOutbound({
      config: { listen: { host: '127.0.0.1', port: 0 }, upstreams: config(20_000) },
      identity: await appIdentity(pki),
      logger: memoryLogger(lines, 'warn'),
      observer,
      options: { endpointBackoffMs: 1, pingIntervalMs: 60_000 },
      codec,
    });
    const { port } = await outbound.listen();
    t.teardown(async () => {
      await outbound.close();
      for (const x of [s, h, upS, upH]) await x.close();
    });
    const inFlight = () => (outbound as unknown as { activity: { inFlight: number } }).activity.inFlight;
    const hFailed = () => lines.some((l) => l.msg === 'upstream endpoint failed' && l.endpoint === `127.0.0.1:${h.port}`);

    // S's dial is held with a GET waiting on it, and H has failed once (its latency sample
    // makes it the pick over S, which has a request waiting and no sample)
    const probes = [request(port, { path: '/probe' })];
    await waitFor('S is dialled', () => s.held === 1);
    if (h.accepted === 0) probes.push(request(port, { path: '/probe' }));
    await waitFor('H failed once', hFailed);
    await waitFor('the probes wait on S', () => inFlight() === probes.length && s.held === 1);

    // the POSTs pick H and wait on its held dial, under the 20 s timeout
    h.mode = 'hold';
    const victims = Array.from({ length: VICTIMS }, (_, i) => request(port, { method: 'POST', path: `/victim/${i}`, body: 'once' }));
    await waitFor('the POSTs wait on H', () => inFlight() === probes.length + VICTIMS && h.held === 1);

    outbound.setUpstreams(config(200)); // bound 800 ms from here on; the POSTs' deadline stays 20 s
    h.mode = 'relay';
    h.resetHeld(); // the POSTs fail over to S and wait on its held dial, until their bound passes
    const answered = await Promise.all(victims);
    t.same(
      answered.map((r) => r.status),
      Array(VICTIMS).fill(200),
      'each POST was answered (retried on H after its wait on S passed its bound)',
    );
    t.equal(posts.h, VICTIMS, 'H got each POST once');

    // S's session comes at last: only the GETs that still wait on it get a stream there
    s.releaseHeld();
    t.same(
      (await Promise.all(probes)).map((r) => r.status),
      probes.map(() => 200),
      'the GETs still waiting on S were served by it',
    );
    t.equal(posts.s, 0, 'no POST reached S after its waiters had left it (none was delivered twice)');
    t.equal(observer.ejections, 0, `S was not ejected: ${VICTIMS} waiters passing their bound together are one failure`);
  });
}
