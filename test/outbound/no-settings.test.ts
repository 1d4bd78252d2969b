// An upstream endpoint that completes mutual TLS (ALPN h2) and then never sends its HTTP/2
// SETTINGS, beside a healthy one, on both codecs: requests waiting on it are bounded (their
// deadline, or the pool's own bound), give their circuit-breaker slot back, the endpoint's
// failure is recorded where the dial fails (so it rests and the healthy one takes the
// traffic), and the hung connection is closed by the SETTINGS timeout.

import t from 'tap';
import { makePki, request, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';
import { startMisbehavingH2 } from '../helpers/misbehaving-h2.js';

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: a peer that never sends SETTINGS neither hangs requests nor fills the circuit`, async (t) => {
    const pki = await makePki(TD);
    const good = await startUpstream(pki);
    const silent = await startMisbehavingH2(pki, 'silent');
    // 300 ms: the request timeout, the connect timeout and the SETTINGS timeout; maxPending 3:
    // three requests stuck for ever would refuse every later one with circuit_open
    const fx = await startBalanced(pki, { ports: [good.port, silent.port], timeoutMs: 300, circuitBreaker: { maxRequests: 1024, maxPending: 3 }, codec, tuning: { pingIntervalMs: 60_000 } });
    t.teardown(async () => {
      await fx.close();
      await good.close();
      await silent.close();
    });
    const statuses: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await request(fx.port, { path: '/echo' });
      statuses.push(`${res.status} ${String(res.headers['x-meshcar-error'] ?? '')}`.trim());
    }
    t.notOk(statuses.some((s) => s.includes('circuit_open')), 'no request was refused by the circuit breaker');
    const ok = statuses.filter((s) => s === '200').length;
    t.ok(ok >= 27, `the healthy endpoint served the rest (${ok} of 30: ${statuses.filter((s) => s !== '200').join(', ') || 'all 200'})`);
    t.ok(silent.connections <= 2, `the silent endpoint was dialled ${silent.connections} time(s): it rests after its failure`);
    // the SETTINGS timeout (300 ms after the handshake) closes what was dialled
    await silent.waitForOpenAtMost(0, 3000);
    t.pass('the connection that never got SETTINGS was closed');
  });

  t.test(`${codec} codec: the only endpoint is silent: every request ends, none is refused for pending ones`, async (t) => {
    const pki = await makePki(TD);
    const silent = await startMisbehavingH2(pki, 'silent');
    const fx = await startBalanced(pki, { ports: [silent.port], timeoutMs: 200, circuitBreaker: { maxRequests: 1024, maxPending: 2 }, codec, tuning: { pingIntervalMs: 60_000, endpointBackoffMs: 50 } });
    t.teardown(async () => {
      await fx.close();
      await silent.close();
    });
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await request(fx.port, { path: '/echo' });
      t.ok(res.status === 503 || res.status === 504, `an error answer (${res.status})`);
      t.match(res.json<object>(), { error: String }, 'as JSON');
      codes.push(String(res.headers['x-meshcar-error']));
    }
    t.notOk(codes.includes('circuit_open'), `no circuit_open: waits gave their slot back (${codes.join(', ')})`);
  });
}
