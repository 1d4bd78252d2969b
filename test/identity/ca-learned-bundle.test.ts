// The bundle a sidecar fetches trusting the roots read back from disk (a stored SVID's, to catch
// up with a rotation it slept through) is not trusted afterwards to receive a join token: a root
// retired because its key leaked may be among those roots, and whoever holds that key can stand
// up a server with the CA's SPIFFE ID. Before, the fetched bundle was learned whatever vouched
// for the connection, and the next sign request sent the token to that server (a review: it
// then issued the sidecar an SVID under a root of its own). A bundle fetched over a connection
// the configured bundle vouches for is still learned. Real CaClient, real TLS servers.

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memoryLogger, startTestCa } from '../helpers/ca.js';
import { makePki } from '../helpers/pki.js';
import { caToken } from '../../src/ca/commands.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { caSpiffeId } from '../../src/identity/spiffe-id.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

type Pki = Awaited<ReturnType<typeof makePki>>;

/** A server with the CA's SPIFFE ID under `pki`'s root (or another's, after `present`): answers `bundle`, records what sign requests carry. */
async function caLookalike(t: Tap.Test, pki: Pki, bundle = pki.bundlePem): Promise<{ url: string; authorizations: string[]; present(pki: Pki): Promise<void> }> {
  const certificate = async (under: Pki) => {
    const own = await under.issue(caSpiffeId(TD), { serverNames: ['127.0.0.1', 'localhost'] });
    return { key: own.privateKeyPem, cert: own.chainPem };
  };
  const authorizations: string[] = [];
  const server = https.createServer(await certificate(pki), (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/bundle') return res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(bundle);
      authorizations.push(req.headers.authorization ?? '(none)');
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'forbidden', message: 'recorded' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    authorizations,
    async present(under) {
      server.setSecureContext(await certificate(under));
    },
  };
}

t.test('a bundle fetched trusting the stored roots alone is not trusted to receive a join token', async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const configured = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const retired = await makePki(TD); // the stored SVID's root, retired since, its key in other hands
  const lookalike = await caLookalike(t, retired);
  const client = new CaClient({ url: lookalike.url, trustDomain: TD, bundlePem: configured, logger: memoryLogger([]) });
  t.equal(await client.fetchBundle(retired.bundlePem), retired.bundlePem, 'the bundle fetch trusts the stored roots (catching up after a rotation)');
  const token = await caToken(ca.dir, 'orders', 600_000, true);
  const signed = client.sign({ spiffeId: ORDERS, auth: { token }, ttlMs: 600_000 });
  await t.rejects(signed, { code: 'ca_mismatch', message: /does not chain to identity\.ca\.bundle/ }, 'the sign request refuses the server');
  t.same(lookalike.authorizations, [], 'the join token never reached it');
});

t.test('a bundle fetched over a connection the configured bundle vouches for is learned', async (t) => {
  // a rotation's first step: the CA, still under the old root, hands out old + new
  const [old, next] = [await makePki(TD), await makePki(TD)];
  const ca = await caLookalike(t, old, old.bundlePem + next.bundlePem);
  const client = new CaClient({ url: ca.url, trustDomain: TD, bundlePem: old.bundlePem, logger: memoryLogger([]) });
  await client.fetchBundle('');
  // then its certificate comes from the new root alone, which identity.ca.bundle does not hold
  await ca.present(next);
  await t.rejects(client.sign({ spiffeId: ORDERS, auth: { token: 'a-token' }, ttlMs: 600_000 }), { code: 'ca_refused', message: /403 forbidden/ }, "the CA's own answer");
  t.same(ca.authorizations, ['Bearer a-token'], 'the sign request trusted the learned bundle and reached the CA');
});
