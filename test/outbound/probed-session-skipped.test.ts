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
// The meshcar codec (the node codec's agent picks its own session on the slow path: not covered).

import t from 'tap';
import { TD, makePki, request, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';
import { memoryLogger } from '../helpers/ca.js';
import { startFreezingRelay } from '../helpers/freezing-relay.js';
import { waitFor } from '../helpers/mesh.js';
import { PROBED_SESSION_GRACE_MS } from '../../src/outbound/probed-sessions.js';

/** One upstream behind a relay, an outbound routing payments to it; warn lines in `lines`. */
async function relayedPath(t: Tap.Test) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  const relay = await startFreezingRelay(upstream.port);
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${relay.port}`], timeoutMs: 15_000 }], { codec: 'meshcar', pingIntervalMs: 60_000, logger: memoryLogger(lines, 'warn') });
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

t.test('a dead session: the requests held during its probe go over a new session once it is judged dead', async (t) => {
  const { upstream, relay, fx, lines, address } = await relayedPath(t);
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
  t.equal((await stuck).status, 200, 'the GET stuck on the dead session retried');
  t.equal(relay.connections, 2, 'over one new session');
  t.equal(lines.filter((l) => String(l.msg).includes('did not answer a PING')).length, 1, 'the silent session declared dead once');
  t.notOk(address()?.probing, 'the endpoint no longer shown probing');
});

t.test('a stalled session that answers: the requests held go out on it, no session is dialled beside it', async (t) => {
  const { relay, fx, lines, address } = await relayedPath(t);
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
