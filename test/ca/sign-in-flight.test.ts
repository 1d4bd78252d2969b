// A sign request in flight when the CA stops, or whose client leaves, and the single-use join
// token it carries. `ca serve` on SIGTERM cut every connection at once: a request waiting for
// the folder's lock got ECONNRESET, and its spend then landed anyway, recording the token spent
// and logging a certificate issued for a socket that was gone; a sidecar that gave up (its own
// timeout, a pod restart) lost its token the same way, its retry told token_used. Now requests
// in flight are answered before the CA closes (up to drainGraceMs), and a spend whose requester
// is gone is not made; a connection with no request in flight closes at once. Real CA server (caServe, what `ca serve` runs) over real TLS; the lock is
// held by a real live process.

import t from 'tap';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { once } from 'node:events';
import { join } from 'node:path';
import { caToken } from '../../src/ca/commands.js';
import { buildCsr } from '../../src/pki/csr-request.js';
import { callCa, startTestCa, type TestCa } from '../helpers/ca.js';
import { ecKeys } from '../helpers/hostile-csr.js';
import { holdCaLock } from '../helpers/ca-lock-holder.js';
import { metricValue, waitFor } from '../helpers/mesh.js';

async function signBody(): Promise<string> {
  const keys = ecKeys();
  return JSON.stringify({ csr: await buildCsr(keys.privateKey, keys.publicKey, 'spiffe://mesh.local/svc/orders') });
}

async function sign(ca: TestCa, token: string): Promise<{ status: number; error?: unknown; message?: unknown }> {
  const answer = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', ca: await readFile(join(ca.dir, 'bundle.pem'), 'utf8'), body: await signBody(), headers: { authorization: `Bearer ${token}` } });
  const json = answer.json();
  return { status: answer.status, error: json.error, message: json.message };
}

/**
 * A single-use token and a first request spending it (`start`), once that spend waits for the
 * held lock: a second request with the token hears so. A probe that reached the spend first
 * (the first request's CSR checks under load) waits out the lock in its place and makes the
 * first answer at once: then the round starts again with the next token (made before the
 * lock is held: `ca token` takes it too).
 */
async function firstSpendWaiting<T>(ca: TestCa, tokens: readonly string[], start: (token: string) => T): Promise<{ token: string; first: T }> {
  for (const token of tokens) {
    const first = start(token);
    const probe = await sign(ca, token);
    if (/being spent by another request now/.test(String(probe.message))) return { token, first };
  }
  throw new Error('the first spend never waited for the lock before a probe');
}

/** Single-use tokens for firstSpendWaiting's rounds. */
const spareTokens = (ca: TestCa) => Promise.all([1, 2, 3].map(() => caToken(ca.dir, 'orders', 3_600_000, true)));

const counted = async (ca: TestCa) => ({
  clientClosed: metricValue(await ca.metrics.render(), 'meshcar_ca_requests_denied_total{reason="client_closed"}') ?? 0,
  issued: metricValue(await ca.metrics.render(), 'meshcar_ca_certificates_issued_total') ?? 0,
});

t.test('a request in flight when the CA closes is answered before it closes', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const tokens = await spareTokens(ca);
  const release = await holdCaLock(t, ca.dir);
  const { token, first } = await firstSpendWaiting(ca, tokens, (token) => sign(ca, token));
  // SIGTERM: `ca serve` calls close(); the command holding the lock then finishes
  const closed = ca.server.close();
  await release();
  t.match(await first, { status: 200 }, 'the request waiting for the lock gets its certificate, not a reset');
  await closed;
  t.equal((await counted(ca)).issued, 1, 'one certificate issued, and delivered');
  // the closed server takes no new connection
  await t.rejects(sign(ca, token), /ECONNREFUSED/, 'and the CA is closed after it');
  await ca.restart();
});

t.test('a spend whose client left while it waited for the lock is not made: the retry signs', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const tokens = await spareTokens(ca);
  const release = await holdCaLock(t, ca.dir);
  const [bundle, body] = await Promise.all([readFile(join(ca.dir, 'bundle.pem'), 'utf8'), signBody()]);
  // the sidecar's first request, which it abandons (its own timeout, a restart)
  const { token, first: abandoned } = await firstSpendWaiting(ca, tokens, (token) => {
    const outgoing = request(new URL('/v1/sign', ca.server.url), { method: 'POST', ca: bundle, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });
    outgoing.on('error', () => undefined);
    outgoing.end(body);
    return outgoing;
  });
  abandoned.destroy();
  await release();
  // the spend ends, one way or the other, once the lock is free
  await waitFor(async () => {
    const now = await counted(ca);
    return now.clientClosed > 0 || now.issued > 0;
  }, 5_000, 'the abandoned spend to end');
  t.same(await counted(ca), { clientClosed: 1, issued: 0 }, 'counted as client_closed; no certificate issued for a socket that is gone');
  t.match(await sign(ca, token), { status: 200 }, 'the retry with the same token signs');
  t.match(await sign(ca, token), { status: 401, error: 'token_used' }, 'spent from then on');
});

t.test('a request still in flight at the end of the drain grace is cut, and its token left unspent', async (t) => {
  const ca = await startTestCa({}, undefined, { drainGraceMs: 300 });
  t.teardown(() => ca.close());
  const tokens = await spareTokens(ca);
  const release = await holdCaLock(t, ca.dir);
  const { token, first } = await firstSpendWaiting(ca, tokens, (token) =>
    sign(ca, token).then(
      (answer) => answer.status,
      (err: NodeJS.ErrnoException) => err.code,
    ),
  );
  await ca.server.close();
  t.equal(await first, 'ECONNRESET', 'cut at the grace');
  await release();
  await waitFor(async () => (await counted(ca)).clientClosed > 0 || (await counted(ca)).issued > 0, 5_000, 'the cut spend to end');
  t.equal((await counted(ca)).issued, 0, 'no certificate issued');
  await ca.restart();
  t.match(await sign(ca, token), { status: 200 }, 'the token signs at the restarted CA');
});

t.test('connections with no request in flight close at once: the close does not wait the grace for them', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const open = async (firstBytes: string) => {
    const socket = connect({ port: ca.server.port, host: '127.0.0.1', ca: bundle, servername: 'localhost' });
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect');
    if (firstBytes !== '') socket.write(firstBytes);
    return { closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
  };
  // a handshake done and nothing sent; a head half sent: Node counts both active, not idle
  const sockets = await Promise.all([open(''), open('GET /healthz HTTP/1.1\r\nHost: lo')]);
  const started = performance.now();
  await ca.server.close();
  const took = performance.now() - started;
  t.ok(took < 3_000, `closed in ${Math.round(took)} ms, not at the 10,000 ms grace`);
  await Promise.all(sockets.map((socket) => socket.closed));
  await ca.restart();
});
