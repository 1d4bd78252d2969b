// The per-identity receive budgets (src/inbound/receive-budgets.ts) outlive an identity's last
// connection for one budget window, then are forgotten: the reset counts they carry survive a
// reconnect, and a sidecar called by many identities over time does not keep them all.

import t from 'tap';
import { KEPT_AFTER_LAST_CONNECTION_MS, ReceiveBudgets } from '../../src/inbound/receive-budgets.js';

const A = 'spiffe://mesh.test/svc/a';
const B = 'spiffe://mesh.test/svc/b';

t.test('kept for the window after the last connection, then forgotten', async (t) => {
  const budgets = new ReceiveBudgets(1024);
  const first = budgets.take(A, 0);
  t.equal(budgets.take(A, 10), first, 'a second connection shares it');
  budgets.release(A, 20);
  budgets.release(A, 30);
  t.equal(budgets.take(A, 5_000), first, 'a connection 5 s after the last closed finds the same budget');
  budgets.release(A, 5_000);
  budgets.take(B, KEPT_AFTER_LAST_CONNECTION_MS + 5_001);
  t.equal(budgets.size, 1, `one window after A's last connection closed, a later handshake forgets A's (${budgets.size} kept)`);
  t.not(budgets.take(A, KEPT_AFTER_LAST_CONNECTION_MS + 5_002), first, 'and A starts afresh');
});

t.test('an identity with a connection open is never forgotten', async (t) => {
  const budgets = new ReceiveBudgets(1024);
  const kept = budgets.take(A, 0);
  budgets.take(B, 60_000);
  t.equal(budgets.take(A, 60_001), kept, 'A, connected for a minute, keeps its budget');
});
