// A session whose probe PING has gone PROBED_SESSION_GRACE_MS unanswered, with nothing read
// since, takes no new request: requests for its endpoint wait for the probe's verdict. The one
// endpoint sits behind a real TCP relay (test/helpers/freezing-relay.ts).
// - Its open connection frozen (new connections pass: a NAT entry dropped, the upstream fine):
//   the POSTs sent during the probe were put on the dead session and cut with it (502); held,
//   they go over one new session once it is judged dead.
// - Its open connection stalled for 3 s (a paused upstream that then answers): the requests
//   held go out on the same session once the ACK comes. A dial beside it (this rule's first
//   form) opened a second session, which an upstream at inbound.limits.maxConnectionsPerCaller
//   refused and a paused one hung, and the endpoint was marked down for it.
// - A connectTimeout short enough that the failover's wait for a stream (4 of them) passes while
//   requests are held: it does not end the hold, nor count against the endpoint.
// Both codecs (the node codec's pool waits before http2-wrapper's agent picks a session).

import t from 'tap';
import { TD, makePki, request, startOutbound, startUpstream, type UpstreamSpec } from '../helpers/outbound-fixture.js';
import { RETRY_DEFAULTS } from '../../src/outbound/retry.js';
import { memoryLogger } from '../helpers/ca.js';
import { startFreezingRelay } from '../helpers/freezing-relay.js';
import { waitFor } from '../helpers/mesh.js';
import { PROBED_SESSION_GRACE_MS } from '../../src/outbound/probed-sessions.js';

/** One upstream behind a relay, an outbound routing payments to it (`spec` added); warn lines in `lines`. */
async function relayedPath(t: Tap.Test, spec: Partial<UpstreamSpec> = {}, codec: 'meshcar' | 'node' = 'meshcar') {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const relay = await startFreezingRelay(upstream.port);
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: 15_000, ...spec }], { codec, pingIntervalMs: 60_000, logger: memoryLogger(lines, 'warn') });
  t.teardown(async () => {
    await fx.close();
    await relay.stop();
    await upstream.close();
  });
  const address = () => fx.outbound.upstreams()[0]?.addresses?.[0];
  return { upstream, relay, fx, lines, address };
}

/** Waits until the session's probe is out, then the rule's grace: a reading of time, as the rule itself is one. */
async function probeHolding(address: () => { probing?: true } | undefined): Promise<void> {
  await waitFor(async () => address()?.probing === true, 5_000, 'the silent session probed');
  await new Promise((r) => setTimeout(r, PROBED_SESSION_GRACE_MS + 50));
}

/** `n` POSTs at once; status and milliseconds of each. */
async function posts(port: number, n: number) {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const started = performance.now();
      const { status } = await request(port, { method: 'POST', body: `order ${i}`, headers: { 'x-request-id': `post-${i}` } });
      return { status, ms: Math.round(performance.now() - started) };
    }),
  );
}

for (const codec of ['meshcar', 'node'] as const) {
t.test(`${codec} codec: a dead session: the requests held during its probe go over a new session once it is judged dead`, async (t) => {
  // no retries: the GET cut with the dead session says why it was not sent again. A short
  // connectTimeout: the failover's wait for a stream (4 of them, 1.2 s) passes while requests are
  // held, which must neither end their hold (they went onto the dead session: 502) nor count
  // against the endpoint
  const { upstream, relay, fx, lines, address } = await relayedPath(t, { retries: { ...RETRY_DEFAULTS, attempts: 0 }, connectTimeoutMs: 300 }, codec);
  t.equal((await request(fx.port)).status, 200, 'warm-up answered');
  relay.freeze(); // that session goes silent, both ways; a new connection would pass
  const stuck = request(fx.port, { headers: { 'x-request-id': 'stuck' } });
  await probeHolding(address);
  const before = upstream.requests;
  const answered = await posts(fx.port, 10);
  t.same(
    answered.map((p) => p.status),
    Array(10).fill(200),
    `every POST answered (${answered.map((p) => `${p.status}/${p.ms}ms`).join(' ')})`,
  );
  t.ok(
    answered.every((p) => p.ms < 6_000),
    'within the probe',
  );
  t.equal(upstream.requests - before >= 10, true, 'by the upstream');
  const cut = await stuck;
  t.equal(cut.status, 502, 'the GET stuck on the dead session cut with it (no retries here)');
  t.match(
    JSON.parse(cut.body.toString()),
    { error: 'upstream_reset', message: /^the session to 127\.0\.0\.1:\d+ was closed under the request: it did not answer a PING within 5000 ms after \d+ ms in which nothing came while 1 stream was open on it \(the path or the peer is dead\); it was not sent again: no retry was left \(retry budget, attempts or time\)$/ },
    'saying the session went silent, and that no retry was left (a GET may be repeated)',
  );
  t.equal(relay.connections, 2, 'over one new session');
  t.equal(lines.filter((l) => String(l.msg).includes('did not answer a PING')).length, 1, 'the silent session declared dead once');
  t.same(
    lines.filter((l) => String(l.msg).includes('endpoint failed')).map((l) => l.msg),
    [],
    'the hold counted as no failure of the endpoint',
  );
  t.notOk(address()?.probing, 'the endpoint no longer shown probing');
});

t.test(`${codec} codec: a stalled session that answers: the requests held go out on it, no session is dialled beside it`, async (t) => {
  const { relay, fx, lines, address } = await relayedPath(t, {}, codec);
  t.equal((await request(fx.port)).status, 200, 'warm-up answered');
  relay.stall(3_000); // the upstream paused: every byte held 3 s, then through
  const stuck = request(fx.port, { headers: { 'x-request-id': 'stuck' } });
  await probeHolding(address);
  const answered = await posts(fx.port, 10);
  t.same(
    answered.map((p) => p.status),
    Array(10).fill(200),
    `every POST answered (${answered.map((p) => `${p.status}/${p.ms}ms`).join(' ')})`,
  );
  t.equal((await stuck).status, 200, 'the GET answered');
  t.equal(relay.connections, 1, 'all over the one session');
  t.same(lines, [], 'no warning: no dial failed, no session declared dead');
  t.match(address(), { state: 'ok', sessions: 1 }, 'the endpoint up, with its one session');
  t.notOk(address()?.probing, 'and no longer probing');
});
}

t.test('a short connectTimeout: a stalled session that answers, nothing counts against the endpoint', async (t) => {
  // the failover waits 4 connect timeouts for a stream (1.2 s here): a hold running into that
  // bound counted as a connect failure (the endpoint rested, a warn line, a retry spent)
  const { relay, fx, lines, address } = await relayedPath(t, { connectTimeoutMs: 300, timeoutMs: 10_000 });
  t.equal((await request(fx.port)).status, 200, 'warm-up answered');
  // probed 1-2 s in, its POSTs held from then on: the stall outlasts that bound by far, not the probe's 5 s
  relay.stall(4_500);
  const stuck = request(fx.port, { headers: { 'x-request-id': 'stuck' } });
  await probeHolding(address);
  const answered = await posts(fx.port, 5);
  t.same(
    answered.map((p) => p.status),
    Array(5).fill(200),
    `every POST answered once the stall ended (${answered.map((p) => `${p.status}/${p.ms}ms`).join(' ')})`,
  );
  t.equal((await stuck).status, 200, 'the GET answered');
  t.equal(relay.connections, 1, 'all over the one session');
  t.same(lines, [], 'no warning: no endpoint failure, no dial');
  t.match(address(), { state: 'ok', sessions: 1 }, 'the endpoint up');
});
