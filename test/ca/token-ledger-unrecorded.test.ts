// A single-use join token whose spend could not be recorded is not spent: no certificate came
// of it, so its retry signs. The ledger used to reserve the token in memory before the write and
// keep it whatever the write did: the folder's lock held by a live process (then 403 after 10 s) or
// an unreadable used-tokens.json (500) burned the token, and the retry was told token_used. The
// lock wait also equalled the sidecar's CA request timeout (10 s), and spends queued behind each
// other waited 10 s each: a sidecar gave up first and heard token_used when it tried again. A
// spend now waits for the lock at most SPEND_LOCK_WAIT_MS from its arrival, well inside the
// sidecar's timeout, with 503 ca_busy and Retry-After, which the sidecar's first issuance
// retries by itself (a 403 ended its start). Real CA server (caServe, what `ca serve` runs) over real TLS; the lock is
// held by a real live process.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { caToken } from '../../src/ca/commands.js';
import { buildCsr } from '../../src/pki/csr-request.js';
import { LEDGER_FILE } from '../../src/ca/token-ledger.js';
import { DEFAULT_CA_TIMEOUT_MS } from '../../src/identity/ca-exchange.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';
import { callCa, memoryLogger, startTestCa, type TestCa } from '../helpers/ca.js';
import { ecKeys } from '../helpers/hostile-csr.js';
import { holdCaLock } from '../helpers/ca-lock-holder.js';

/** The sidecar gives up after DEFAULT_CA_TIMEOUT_MS; the CA's answer must come well before, TLS and signing included. */
const ANSWER_BEFORE_MS = DEFAULT_CA_TIMEOUT_MS - 3_000;

async function signingCa(t: Tap.Test): Promise<{ ca: TestCa; sign: (token: string) => Promise<{ status: number; retryAfter: unknown; error?: string; message?: string; ms: number }> }> {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const sign = async (token: string) => {
    const keys = ecKeys();
    const body = JSON.stringify({ csr: await buildCsr(keys.privateKey, keys.publicKey, 'spiffe://mesh.local/svc/orders') });
    const started = performance.now();
    const answer = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, body, headers: { authorization: `Bearer ${token}` } });
    const json = answer.json() as { error?: string; message?: string };
    return { status: answer.status, retryAfter: answer.headers['retry-after'], ...(json.error === undefined ? {} : { error: json.error, message: json.message }), ms: performance.now() - started };
  };
  return { ca, sign };
}

t.test('a spend the held lock stopped leaves the token unspent, answered before the sidecar gives up', async (t) => {
  const { ca, sign } = await signingCa(t);
  const token = await caToken(ca.dir, 'orders', 3_600_000, true);
  const release = await holdCaLock(t, ca.dir);
  const refused = await sign(token);
  t.match(refused, { status: 503, error: 'ca_busy', message: /being changed by another meshcar process.*the join token was not spent: retry/ }, 'busy, saying the token was not spent');
  t.equal(refused.retryAfter, '1', 'with Retry-After: 1');
  t.ok(refused.ms < ANSWER_BEFORE_MS, `answered in ${Math.round(refused.ms)} ms, before the sidecar's ${DEFAULT_CA_TIMEOUT_MS} ms`);
  await release();
  t.equal((await sign(token)).status, 200, 'the same token signs once the lock is gone');
  t.match(await sign(token), { status: 401, error: 'token_used' }, 'and is spent from then on');
});

t.test('a second request with a token whose spend is under way is busy, not token_used: the token may yet stay unspent', async (t) => {
  const { ca, sign } = await signingCa(t);
  const token = await caToken(ca.dir, 'orders', 3_600_000, true);
  const release = await holdCaLock(t, ca.dir);
  // a sidecar restarted while its first request waits for the lock sends the same token again:
  // told token_used, it gave up for good, and the first then came back unspent
  const [first, second] = await Promise.all([sign(token), sign(token)]);
  t.same([first.status, first.error, second.status, second.error], [503, 'ca_busy', 503, 'ca_busy'], `both busy (${first.message ?? ''} / ${second.message ?? ''})`);
  t.ok([first, second].some((answer) => /being spent by another request now/.test(answer.message ?? '')), 'the one that came second says why');
  await release();
  t.equal((await sign(token)).status, 200, 'the token signs once the lock is gone');
});

t.test("a sidecar's first start while the lock is held waits, and gets its SVID with the same token once the lock is gone", async (t) => {
  const { ca } = await signingCa(t);
  const scratch = t.testdir();
  const tokenPath = join(scratch, 'orders.token');
  await writeFile(tokenPath, await caToken(ca.dir, 'orders', 3_600_000, true), { mode: 0o600 });
  // the sidecar's own first issuance, with its request timeout (DEFAULT_CA_TIMEOUT_MS) and retries
  const lines: Array<Record<string, unknown>> = [];
  const release = await holdCaLock(t, ca.dir);
  const starting = obtainIdentity({
    spiffeId: 'spiffe://mesh.local/svc/orders',
    trustDomain: 'mesh.local',
    dir: join(scratch, 'identity'),
    ca: { url: ca.server.url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath },
    logger: memoryLogger(lines),
  });
  const refusal = () => lines.find((l) => /refused \(503 ca_busy\).*the join token was not spent/.test(String(l.msg)));
  for (let i = 0; i < 300 && refusal() === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.ok(refusal(), 'the start hears 503 ca_busy, not a timeout and then token_used, and says it retries');
  await release();
  const running = await starting;
  t.teardown(() => running.stop());
  t.equal(running.identity.current().spiffeId, 'spiffe://mesh.local/svc/orders', 'the same start gets its SVID with the same token once the lock is gone');
});

t.test('spends queued behind a held lock are all answered before the sidecar gives up', async (t) => {
  const { ca, sign } = await signingCa(t);
  const tokens = await Promise.all([1, 2, 3].map(() => caToken(ca.dir, 'orders', 3_600_000, true)));
  const release = await holdCaLock(t, ca.dir);
  const answers = await Promise.all(tokens.map(sign));
  for (const [i, answer] of answers.entries()) {
    t.equal(answer.status, 503, `spend ${i + 1}: ca_busy`);
    t.ok(answer.ms < ANSWER_BEFORE_MS, `spend ${i + 1}: answered in ${Math.round(answer.ms)} ms`);
  }
  await release();
  t.same((await Promise.all(tokens.map(sign))).map((a) => a.status), [200, 200, 200], 'each token signs once the lock is gone');
});

t.test('a spend an unreadable ledger stopped leaves the token unspent', async (t) => {
  const { ca, sign } = await signingCa(t);
  const spent = await caToken(ca.dir, 'orders', 3_600_000, true);
  // made before the ledger is broken: `ca token` opens the folder, ledger included
  const token = await caToken(ca.dir, 'orders', 3_600_000, true);
  t.equal((await sign(spent)).status, 200, 'one token spent: the ledger exists');
  const path = join(ca.dir, LEDGER_FILE);
  const whole = await readFile(path, 'utf8');
  await writeFile(path, whole.slice(0, whole.length / 2));
  t.match(await sign(token), { status: 500, error: 'ca_missing', message: /used-tokens\.json cannot be read/ }, 'a truncated ledger: 500 naming the file');
  await writeFile(path, whole);
  t.equal((await sign(token)).status, 200, 'the same token signs once the ledger is mended');
  t.match(await sign(spent), { status: 401, error: 'token_used' }, 'and the token spent before is still refused');
});
