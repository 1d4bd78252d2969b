// POST /v1/sign's requester is judged when the request's head arrives (nothing is read for one
// that carries no grant) and again once its body is in, just before signing: the body may take
// up to the CA's requestTimeout, and meanwhile the join token may expire, the client certificate
// expire, or its root be retired by an emergency rotation. Each of those used to be signed on
// the head's verdict: a spent single-use token spent again once the ledger had dropped it as
// expired, an SVID renewed after its end, a fresh SVID under a retired root. Real CA server
// (caServe, what `ca serve` runs) over real TLS; the client holds its body back on a raw TLS socket.

import t from 'tap';
import tls from 'node:tls';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callCa, startTestCa, type TestCa } from '../helpers/ca.js';
import { svidProofHeader } from '../../src/pki/svid-proof.js';
import { buildCsr } from '../../src/pki/csr-request.js';
import { caToken } from '../../src/ca/commands.js';
import { rootActivate, rootAdd, rootRetire } from '../../src/ca/lifecycle.js';
import { TokenLedger } from '../../src/ca/token-ledger.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

async function csrFor(id: string): Promise<{ csr: string; keyPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { csr: await buildCsr(privateKey, publicKey, id), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** A sign request whose head and first bytes of body go now; `finish()` sends the rest and resolves with the status line and JSON. */
async function slowSign(ca: TestCa, bundle: string, auth: { token?: string; cert?: string; key?: string }, csr: string) {
  const body = JSON.stringify({ csr });
  const socket = tls.connect({ host: '127.0.0.1', port: ca.server.port, ca: bundle, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => (answer += c));
  const ended = new Promise<void>((resolve) => socket.once('close', resolve));
  socket.write(`POST /v1/sign HTTP/1.1\r\nHost: localhost\r\n${auth.token ? `Authorization: Bearer ${auth.token}\r\n` : ''}${auth.cert ? `Authorization: ${svidProofHeader(socket, auth.cert, auth.key ?? '')}\r\n` : ''}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, 10)}`);
  return {
    async finish(): Promise<{ status: number; json: Record<string, unknown> }> {
      socket.write(body.slice(10));
      await ended;
      return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]), json: JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown> };
    },
  };
}

const sign = (ca: TestCa, bundle: string, body: object, auth: { token?: string; cert?: string; key?: string }) =>
  callCa(ca.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, headers: auth.token ? { authorization: `Bearer ${auth.token}` } : {}, body: JSON.stringify(body), ...(auth.cert ? { cert: auth.cert, key: auth.key } : {}) });

const until = async (ms: number) => {
  while (Date.now() < ms) await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, ms - Date.now()))));
};

t.test('a spent single-use token whose replay outlasts the token: token_expired, never a second SVID', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const token = await caToken(ca.dir, 'orders', 3_000, true);
  const expMs = (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp * 1000;
  t.equal((await sign(ca, bundle, { csr: (await csrFor(ORDERS)).csr }, { token })).status, 200, 'spent once');
  t.equal((await sign(ca, bundle, { csr: (await csrFor(ORDERS)).csr }, { token })).json().error, 'token_used', 'refused at once the second time');
  // the replay's head goes while the token is valid, its body after its end...
  const replay = await slowSign(ca, bundle, { token }, (await csrFor(ORDERS)).csr);
  await until(expMs + 500);
  // ...after another sidecar's first contact rewrote the ledger, which keeps the expired token
  // (PRUNE_MARGIN_MS past its end), and a server on the folder whose clock runs further ahead
  // than that dropped it: the replay must not rely on the entry
  const other = await caToken(ca.dir, 'payments', 60_000, true);
  t.equal((await sign(ca, bundle, { csr: (await csrFor('spiffe://mesh.local/svc/payments')).csr }, { token: other })).status, 200);
  const ledgerPath = join(ca.dir, 'used-tokens.json');
  const entries = JSON.parse(await readFile(ledgerPath, 'utf8')) as Record<string, number>;
  const jti = (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { jti: string }).jti;
  t.ok(jti in entries, 'the ledger still lists the expired token');
  delete entries[jti];
  await writeFile(ledgerPath, JSON.stringify(entries), { mode: 0o600 });
  const answer = await replay.finish();
  t.equal(answer.status, 401, 'the replay is refused');
  t.equal(answer.json.error, 'token_expired');
  t.equal(ca.logLines.filter((l) => l.component === 'ca-audit' && l.result === 'issued').length, 2, 'two SVIDs issued in all: the first use and the other sidecar');
});

t.test('an SVID that expires while its renewal body arrives: bad_svid, not renewed', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const own = await csrFor(ORDERS);
  const first = await sign(ca, bundle, { csr: own.csr, ttl: '3s' }, { token: await caToken(ca.dir, 'orders', 60_000, false) });
  const chain = first.json().chain as string;
  const notAfter = Date.parse(new X509Certificate(chain).validTo);
  const renewal = await slowSign(ca, bundle, { cert: chain, key: own.keyPem }, (await csrFor(ORDERS)).csr);
  t.ok(Date.now() < notAfter, 'the head went while the SVID was valid');
  await until(notAfter + 1_000);
  const answer = await renewal.finish();
  t.equal(answer.status, 401, 'refused once the body is in');
  t.equal(answer.json.error, 'bad_svid');
  t.match(answer.json.message, /expired at/);
});

t.test('a renewal under way across an emergency root rotation: bad_svid, no SVID under the retired root', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const own = await csrFor(ORDERS);
  const first = await sign(ca, bundle, { csr: own.csr }, { token: await caToken(ca.dir, 'orders', 60_000, false) });
  const chain = first.json().chain as string;
  const renewal = await slowSign(ca, bundle, { cert: chain, key: own.keyPem }, (await csrFor(ORDERS)).csr);
  // what `ca root add`, `root activate --force` and `root retire --force` run
  await rootAdd(ca.dir);
  await rootActivate(ca.dir, { force: true });
  await rootRetire(ca.dir, { force: true });
  const answer = await renewal.finish();
  t.equal(answer.status, 401, 'refused once the body is in');
  t.equal(answer.json.error, 'bad_svid');
  t.match(answer.json.message, /does not chain to a root this CA still trusts/);
});

t.test('the ledger spends no expired token, whoever judged it valid before', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const ledger = await TokenLedger.open(ca.dir);
  const now = Date.now();
  await t.rejects(ledger.redeem('expired-jti', Math.floor(now / 1000) - 1, now), { code: 'token_expired' }, 'an expired token: token_expired');
  await ledger.redeem('valid-jti', Math.floor(now / 1000) + 60, now);
  await t.rejects(ledger.redeem('valid-jti', Math.floor(now / 1000) + 60, now), { code: 'token_used' }, 'a valid one is spent once');
});
