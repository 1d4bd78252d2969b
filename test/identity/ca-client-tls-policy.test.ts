// The sidecar's CA client holds to the TLS policy of every meshcar endpoint (TLS 1.2 or later,
// on 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305, no renegotiation): the CA's own port
// offers nothing else, so a server on the CA's address that negotiates a CBC suite is not the
// meshcar CA and is refused before anything is sent. A real HTTPS server with the CA's SPIFFE
// ID and a certificate from our CA, once with the policy's suites (the control) and once with
// a CBC suite only.

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memoryLogger, startTestCa } from '../helpers/ca.js';
import { openAuthority } from '../../src/ca/commands.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { caSpiffeId } from '../../src/identity/spiffe-id.js';

const TD = 'mesh.local';

t.test("a server on the CA's address that negotiates a CBC suite on TLS 1.2 is refused; the policy's suites are taken", async (t) => {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const authority = await openAuthority(ca.dir, { maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 });
  const keys = await generateWorkloadKey();
  const own = await authority.issue(caSpiffeId(TD), createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' }), undefined, ['127.0.0.1']);
  const serve = async (ciphers: string) => {
    let requests = 0;
    const server = https.createServer({ key: keys.privateKeyPem, cert: own.chain, maxVersion: 'TLSv1.2', ciphers }, (_req, res) => {
      requests += 1;
      res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(bundlePem);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const client = new CaClient({ url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, trustDomain: TD, bundlePem, logger: memoryLogger([]) });
    return { client, requests: () => requests };
  };

  const gcm = await serve('ECDHE-ECDSA-AES128-GCM-SHA256');
  t.equal(await gcm.client.fetchBundle(bundlePem), bundlePem, 'ECDHE with AES-GCM on TLS 1.2: the bundle is fetched');
  t.equal(gcm.requests(), 1);

  const cbc = await serve('ECDHE-ECDSA-AES128-SHA');
  await t.rejects(cbc.client.fetchBundle(bundlePem), { code: 'ca_unreachable' }, 'ECDHE with AES-CBC: refused in the handshake');
  t.equal(cbc.requests(), 0, 'nothing reached the server');
});
