// A join token goes only to a CA whose certificate chains to identity.ca.bundle, never to one
// vouched for by roots read back from identity.dir: an expired set's stored bundle may hold a
// root retired because its key leaked (the operator took it out of identity.ca.bundle), or a
// root of another lineage. A server with the CA's SPIFFE ID under such a root gets no token,
// nor one under the newer root a sidecar away across a root rotation had learned (that
// sidecar is told to take the current bundle.pem, README). A version of this stop that trusted
// stored roots sent the token to such servers (a review reproduced it, twice).

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { makePki, type TestPki } from '../helpers/pki.js';
import { makeCaDir } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';
import { caSpiffeId } from '../../src/identity/spiffe-id.js';
import { isMeshcarError } from '../../src/errors.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;
const logger = pino({ level: 'silent' });

/** A server with the CA's SPIFFE ID under `pki`'s root: records the Authorization it is sent, refuses the token. */
async function caUnder(t: Tap.Test, pki: TestPki): Promise<{ url: string; tokens: string[] }> {
  const leaf = await pki.issue(caSpiffeId(TD), { serverNames: ['127.0.0.1'] });
  const tokens: string[] = [];
  const server = https.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem }, (req, res) => {
    tokens.push(String(req.headers.authorization ?? ''));
    req.resume();
    res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"token_invalid","message":"recorded"}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, tokens };
}

/** A first start: configured bundle `configured`, an expired set stored with bundle `stored`, the CA at `url`. */
async function firstStart(t: Tap.Test, configured: string, stored: string, url: string): Promise<unknown> {
  const work = await mkdtemp(join(tmpdir(), 'meshcar-stored-roots-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const dir = join(work, 'identity');
  await mkdir(dir, { mode: 0o700 });
  await chmod(dir, 0o700);
  // a set as a long stop leaves it: its leaf unusable (here not even a certificate), its bundle kept
  await writeFile(join(dir, 'svid.crt'), 'expired\n');
  await writeFile(join(dir, 'svid.key'), 'expired\n', { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), stored);
  await writeFile(join(work, 'bundle.pem'), configured);
  await writeFile(join(work, 'orders.token'), `${await caToken(await makeCaDir(TD), 'orders', 600_000, false)}\n`, { mode: 0o600 });
  return obtainIdentity({ spiffeId: ORDERS, trustDomain: TD, dir, ca: { url, bundlePath: join(work, 'bundle.pem'), tokenPath: join(work, 'orders.token'), timeoutMs: 3000 }, startupTimeoutMs: 3000, logger }).then(
    () => 'started',
    (err: unknown) => err,
  );
}

t.test('roots stored with an expired SVID never vouch for the CA a token goes to', async (t) => {
  const old = await makePki(TD);
  const next = await makePki(TD);
  const planted = await makePki(TD);

  // away across a rotation: the old root configured, both stored, the CA under the new one:
  // refused with the fix named, no token sent
  const rotated = await caUnder(t, next);
  const away = await firstStart(t, old.bundlePem, old.bundlePem + next.bundlePem, rotated.url);
  t.ok(isMeshcarError(away) && away.code === 'ca_mismatch' && /use the bundle\.pem of the CA that serves/.test(away.message), `refused as ca_mismatch, the fix named (${String(away)})`);
  t.same(rotated.tokens, [], 'no token sent under a root known only from disk');

  // the old root retired for compromise, identity.ca.bundle replaced with the new one: a server
  // under the old root gets nothing, though the stored bundle still holds it
  const compromised = await caUnder(t, old);
  const refused = await firstStart(t, next.bundlePem, old.bundlePem + next.bundlePem, compromised.url);
  t.ok(isMeshcarError(refused) && refused.code === 'ca_mismatch', `refused as ca_mismatch (${String(refused)})`);
  t.same(compromised.tokens, [], 'no token sent under the older stored root');

  // a stored bundle without the configured root: another lineage, never trusted
  const stranger = await caUnder(t, planted);
  const strange = await firstStart(t, old.bundlePem, planted.bundlePem, stranger.url);
  t.ok(isMeshcarError(strange) && strange.code === 'ca_mismatch', `refused as ca_mismatch (${String(strange)})`);
  t.same(stranger.tokens, [], 'no token sent under a root of another lineage');
});
