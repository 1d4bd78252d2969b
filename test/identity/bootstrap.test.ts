// obtainIdentity end to end against the real CA server: join token on first start, renewal
// with the SVID proven on its connection, persistence, and a restart that reuses the stored SVID
// without the token; against a CA of an earlier version (which takes no SVID proof), the
// renewal asks again with the join token.

import t from 'tap';
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { createPublicKey } from 'node:crypto';
import { callCa, startTestCa } from '../helpers/ca.js';
import { caToken, openAuthority } from '../../src/ca/commands.js';
import { caSpiffeId } from '../../src/identity/spiffe-id.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';
import { STORE_FILES } from '../../src/identity/disk-store.js';
import type { Svid } from '../../src/identity/svid.js';
import type { RenewalEvent } from '../../src/identity/workload-identity.js';
import { describeError } from '../../src/errors.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';
const logger = pino({ level: 'silent' });

/** The real CA, a work folder and a join token for orders in it (single-use unless said); removed after the test. */
async function caWithToken(t: Tap.Test, singleUse = true) {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  const work = await mkdtemp(join(tmpdir(), 'meshcar-boot-'));
  t.teardown(async () => {
    await ca.close();
    await rm(work, { recursive: true, force: true });
  });
  const tokenPath = join(work, 'orders.token');
  await writeFile(tokenPath, `${await caToken(ca.dir, 'orders', 600_000, singleUse)}\n`, { mode: 0o600 });
  return { ca, work, tokenPath };
}

// The last two tests spend most of their time waiting for a stored SVID to reach its last tenth
// of life (about 12 s each); every test has its own CA, work folder and token, so the three run
// side by side rather than one wait after another.
t.jobs = 3;

t.test('obtainIdentity with the real CA', async (t) => {
  const { ca, work, tokenPath } = await caWithToken(t);
  const options = {
    spiffeId: ORDERS,
    trustDomain: 'mesh.local',
    dir: join(work, 'identity'),
    ca: { url: ca.server.url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath },
    ttlMs: 6000,
    logger,
  };

  const running = await obtainIdentity(options);
  const first = running.identity.current();
  t.equal(first.spiffeId, ORDERS);
  t.ok(running.nextRenewalAt(), 'renewal scheduled');
  t.equal((await stat(join(options.dir, STORE_FILES.key))).mode & 0o777, 0o600);
  t.equal(await readFile(join(options.dir, STORE_FILES.key), 'utf8'), first.privateKeyPem, 'persisted');

  // renewal goes to the CA with the SVID (the single-use token is spent) and is persisted
  const [renewed] = (await once(running.identity, 'rotated')) as [Svid];
  t.not(renewed.serialHex, first.serialHex);
  t.ok(ca.logLines.some((l) => l.event === 'ca.issue' && l.auth === 'svid'), 'renewed with the SVID as credential');
  t.equal(await readFile(join(options.dir, STORE_FILES.chain), 'utf8'), renewed.chainPem, 'persisted before the swap');
  running.stop();

  // restart: the token is gone, the stored SVID is reused
  await unlink(tokenPath);
  const restarted = await obtainIdentity(options);
  t.equal(restarted.identity.current().serialHex, renewed.serialHex, 'reused from disk');
  restarted.stop();

  // nothing usable on disk and no token: one clear error
  await rm(options.dir, { recursive: true });
  await t.rejects(obtainIdentity(options), { code: 'identity_invalid', message: /cannot read the join token file .*orders\.token/ });
});

t.test('a restart with a stored SVID in its last tenth of life renews it with itself: no join token needed', async (t) => {
  const { ca, work, tokenPath } = await caWithToken(t);
  // 15 s leaves, backdated 1.5 s; the renewal window late (97%) so the running sidecar does not renew first
  const options = { spiffeId: ORDERS, trustDomain: 'mesh.local', dir: join(work, 'identity'), ca: { url: ca.server.url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath }, ttlMs: 15_000, renewal: { from: 0.97, to: 0.97 }, logger };
  const running = await obtainIdentity(options);
  const stored = running.identity.current();
  running.stop(); // down, e.g. while the CA was away; the single-use token is spent
  const lifetime = stored.notAfter.getTime() - stored.notBefore.getTime();
  // wait until less than a tenth of its life is left (the stored SVID is then not served without asking)
  while (stored.notAfter.getTime() - Date.now() > lifetime * 0.09) await new Promise((r) => setTimeout(r, 100));
  t.ok(stored.notAfter.getTime() > Date.now() + 1000, 'still valid at the restart, by more than a second');
  const restarted = await obtainIdentity(options);
  t.teardown(() => restarted.stop());
  const now = restarted.identity.current();
  t.not(now.serialHex, stored.serialHex, 'a new SVID');
  t.ok(now.notAfter.getTime() > stored.notAfter.getTime(), 'with a later end');
  t.ok(ca.logLines.some((l) => l.event === 'ca.issue' && l.auth === 'svid' && l.clientSerial === stored.serialHex.toLowerCase()), 'renewed with the stored SVID as credential');
});

t.test('the CA out of reach at a restart: a stored SVID serves, also one near its end (renewal retries later)', async (t) => {
  const { ca, work, tokenPath } = await caWithToken(t);
  const lines: Array<{ msg?: string }> = [];
  const recording = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  // the bundle the sidecar is configured with outlives the CA's folder (removed by its close)
  const bundlePath = join(work, 'bundle.pem');
  await writeFile(bundlePath, await readFile(join(ca.dir, 'bundle.pem')));
  const base = { spiffeId: ORDERS, trustDomain: 'mesh.local', dir: join(work, 'identity'), ca: { url: ca.server.url, bundlePath, tokenPath, timeoutMs: 500 }, ttlMs: 15_000, renewal: { from: 0.97, to: 0.97 }, startupTimeoutMs: 200, logger: recording };
  const running = await obtainIdentity(base);
  const stored = running.identity.current();
  running.stop();
  await ca.close(); // the CA is gone; its port refuses connections

  // plenty of life left: reused as stored, the bundle fetch failing is only a warning
  const early = await obtainIdentity(base);
  t.equal(early.identity.current().serialHex, stored.serialHex, 'reused while the CA is away');
  t.ok(lines.some((l) => /could not fetch the CA's trust bundle at start/.test(l.msg ?? '')), 'the failed bundle fetch is logged');
  early.stop();

  // in its last tenth: it would be renewed first, but the CA is unreachable: it serves while it lasts
  const lifetime = stored.notAfter.getTime() - stored.notBefore.getTime();
  while (stored.notAfter.getTime() - Date.now() > lifetime * 0.099) await new Promise((r) => setTimeout(r, 20));
  t.ok(stored.notAfter.getTime() > Date.now() + 1300, 'still valid, by more than the start-up retries take');
  const late = await obtainIdentity(base);
  t.teardown(() => late.stop());
  t.equal(late.identity.current().serialHex, stored.serialHex, 'started with the stored SVID near its end');
  t.ok(lines.some((l) => /the CA is out of reach .*starting with the stored SVID, which expires soon/.test(l.msg ?? '')), 'and says so');
});

// A CA of an earlier meshcar version renewed by client certificate and refuses any other
// Authorization than Bearer (401 unauthenticated): in a fleet upgraded sidecars first, a renewal
// asks again with the join token at once, rather than failing until the SVID's last second.
// Played by a server with the CA's certificate that answers an SVID proof as such a CA did and
// passes a token's request on to the real CA.
t.test('a CA that answers an SVID proof 401 unauthenticated (an earlier version): the renewal uses the join token', async (t) => {
  const { ca, work, tokenPath } = await caWithToken(t, false);
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const keys = await generateWorkloadKey();
  const authority = await openAuthority(ca.dir, { maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 });
  const own = await authority.issue(caSpiffeId('mesh.local'), createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' }), undefined, ['127.0.0.1']);
  const seen: string[] = [];
  const old = https.createServer({ key: keys.privateKeyPem, cert: own.chain }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const authorization = req.headers.authorization ?? '';
      seen.push(authorization.split(' ')[0] ?? '');
      if (!/^bearer /i.test(authorization)) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unauthenticated', message: 'the Authorization header must be "Bearer <join token>"' }));
        return;
      }
      void callCa(ca.server.url, { method: 'POST', path: req.url ?? '/', ca: bundle, headers: { authorization }, body: Buffer.concat(chunks) }).then((answer) => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.text));
    });
  });
  old.listen(0, '127.0.0.1');
  await once(old, 'listening');
  t.teardown(() => old.close());
  const url = `https://127.0.0.1:${(old.address() as AddressInfo).port}`;
  const running = await obtainIdentity({ spiffeId: ORDERS, trustDomain: 'mesh.local', dir: join(work, 'identity'), ca: { url, bundlePath: join(ca.dir, 'bundle.pem'), tokenPath }, ttlMs: 6000, logger });
  t.teardown(() => running.stop());
  const first = running.identity.current();
  const [renewed] = (await once(running.identity, 'rotated')) as [Svid];
  t.not(renewed.serialHex, first.serialHex, 'renewed');
  t.same(seen, ['Bearer', 'SVID', 'Bearer'], 'first issuance by token; the renewal by SVID, refused, then by token at once');
  running.stop();
  // with no token configured there is nothing to fall back on: the renewal's failure is the CA's
  // own refusal, not "no valid SVID and no join token configured" of an SVID that is valid (a re-review)
  const without = await obtainIdentity({ spiffeId: ORDERS, trustDomain: 'mesh.local', dir: join(work, 'identity'), ca: { url, bundlePath: join(ca.dir, 'bundle.pem') }, ttlMs: 6000, logger });
  t.teardown(() => without.stop());
  const [event] = (await once(without.identity, 'renewal')) as [RenewalEvent];
  t.equal(event.result, 'failure');
  t.match(describeError(event.error), /refused \(401 unauthenticated\): the Authorization header must be "Bearer <join token>"/, 'the CA\'s refusal');
});
