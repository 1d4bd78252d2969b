// The CA server's first TLS handshake after a change of its folder by another process (here a
// root rotation run to its end while the server took no request, as `meshcar ca root add`,
// `activate --force`, `retire --force` from a shell would) presents the chain of the folder as
// it is now. Before, the folder was looked at per request, after the handshake: the first
// connection got the chain under the retired root. A sidecar holding the current bundle.pem
// failed it ("does not chain to identity.ca.bundle"), and one holding the stale bundle passed
// it and was then told "the CA's bundle.pem is not its own", where its own bundle was the
// stale one. Now the first handshake is under the new root: the current bundle signs at once,
// the stale one is told its bundle is not the CA's, with the fix.

import t from 'tap';
import { connect, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestCa, memoryLogger } from '../helpers/ca.js';
import { caToken } from '../../src/ca/commands.js';
import { rootActivate, rootAdd, rootRetire } from '../../src/ca/lifecycle.js';
import { CaClient } from '../../src/identity/ca-client.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

/** The issuer certificate the CA presents on a new TLS connection (no client certificate sent). */
async function presentedIssuer(url: string): Promise<X509Certificate> {
  const { hostname, port } = new URL(url);
  const socket: TLSSocket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false });
  try {
    await once(socket, 'secureConnect');
    const issuer = socket.getPeerX509Certificate()?.issuerCertificate;
    if (!issuer) throw new Error('no issuer presented');
    return issuer;
  } finally {
    socket.destroy();
  }
}

t.test('after a root rotation by another process, the first handshake is under the new root', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  await rootAdd(ca.dir);
  await rootActivate(ca.dir, { force: true });
  await rootRetire(ca.dir, { force: true });
  const current = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const newRoot = new X509Certificate(current);

  const issuer = await presentedIssuer(ca.server.url);
  t.ok(issuer.checkIssued(newRoot) && issuer.verify(newRoot.publicKey), 'the first handshake presents an issuer under the new root');

  const signed = await new CaClient({ url: ca.server.url, trustDomain: TD, bundlePem: current, logger: memoryLogger([]) })
    .sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 60_000, false) } })
    .then(() => 'signed', (err: Error) => err.message);
  t.equal(signed, 'signed', 'a sidecar with the current bundle.pem gets its SVID at once');

  // a CA server started now (its chain under this root), then a second rotation with no
  // request between: `current` is the stale bundle of a sidecar whose ConfigMap was not updated
  const ca2 = await startTestCa({}, ca.dir);
  t.teardown(() => ca2.close());
  await rootAdd(ca.dir);
  await rootActivate(ca.dir, { force: true });
  await rootRetire(ca.dir, { force: true });
  const refused = await new CaClient({ url: ca2.server.url, trustDomain: TD, bundlePem: current, logger: memoryLogger([]) })
    .sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 60_000, false) } })
    .then(() => 'signed', (err: Error) => err.message);
  t.notMatch(refused, /bundle\.pem is not its own/, `a stale bundle is not blamed on the CA: ${refused}`);
  t.match(refused, /does not chain to identity\.ca\.bundle.*use the bundle\.pem of the CA that serves .* \(as it is now: a bundle from before a "root retire" holds only the retired root\), and a join token made after "root activate"/, 'it says the sidecar\'s bundle is not the CA\'s, the likely cause and the fix');
});
