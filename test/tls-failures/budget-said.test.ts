// The TLS failure lines held back by the budget for all addresses (100 per window) are said by
// the next line let through, whatever its address: a scanner's addresses (an IPv6 /64, one per
// connection) never come back, so counted on their own address they were never said, and the
// log showed 100 failures where there were 150. A short window keeps the file fast; the real
// sidecar's 150-address run is many-addresses.test.ts.

import t from 'tap';
import { TlsFailureLog } from '../../src/tls-failures/failure-log.js';
import { memoryLogger } from '../helpers/ca.js';

// long enough that 150 calls fit in one window on a loaded machine (300 ms did not, at load 16)
const WINDOW_MS = 1_500;

t.test('150 failures from 150 addresses: 100 lines, and the next line says the 50 left out', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const log = new TlsFailureLog(memoryLogger(lines), { windowMs: WINDOW_MS });
  for (let i = 0; i < 150; i++) log.tlsHandshakeFailed('inbound', 'no_client_cert', { peer: `10.0.${i >> 8}.${i & 255}:4000${i % 10}`, message: 'no client certificate' });
  t.equal(lines.length, 100, 'the budget: 100 lines');
  t.notOk(lines.some((l) => 'overBudget' in l), 'nothing held back yet when they were written');
  const start = Date.now();
  while (Date.now() - start < WINDOW_MS + 50) await new Promise((resolve) => setTimeout(resolve, 20));
  log.tlsHandshakeFailed('inbound', 'no_client_cert', { peer: '10.1.0.1:5000', message: 'no client certificate' });
  t.equal(lines.length, 101);
  const next = lines[100] as Record<string, unknown>;
  t.equal(next.overBudget, 50, 'the 50 held back, as a field');
  t.match(String(next.msg), /\(and 50 more like it over the limit of 100 lines per 1\.5 s, not logged\)$/, 'and in words');
  t.notOk('suppressed' in next, 'none from its own address');
  log.tlsHandshakeFailed('inbound', 'no_client_cert', { peer: '10.1.0.2:5000', message: 'no client certificate' });
  t.notOk('overBudget' in (lines[101] as Record<string, unknown>), 'said once');
  t.equal(log.recent().length, 100, '/debug/tls keeps its last 100 as before');
});
