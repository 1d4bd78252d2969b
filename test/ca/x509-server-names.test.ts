// The CA server's own certificate names its IP addresses as iPAddress SANs encoded from their
// parsed bytes (4 or 16), never from text node-forge reads: forge took `::1%lo` for another
// address and wrote `fe80::1%eth0` as a 17-byte SAN no client accepts. A name that is no such
// address is refused when the certificate is made (the config refuses zones before: ca-config).

import t from 'tap';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { startTestCa } from '../helpers/ca.js';
import { makePki } from '../helpers/pki.js';

const ID = 'spiffe://mesh.test/svc/ca';

t.test('IPv6 names in any spelling become the right 16 bytes', async (t) => {
  const pki = await makePki();
  const leaf = await pki.issue(ID, { serverNames: ['localhost', '0:0:0:0:0:0:0:1', 'FD00::0002', '::ffff:10.0.0.1', '10.0.0.2'] });
  const san = new X509Certificate(leaf.certificatePem).subjectAltName ?? '';
  t.match(san, /IP Address:0:0:0:0:0:0:0:1\b/);
  t.match(san, /IP Address:FD00:0:0:0:0:0:0:2\b/i);
  t.match(san, /IP Address:10\.0\.0\.2\b/);
  t.match(san, /DNS:localhost/);
  const cert = new X509Certificate(leaf.certificatePem);
  t.equal(cert.checkIP('::1'), '::1');
  t.equal(cert.checkIP('fd00::2'), 'fd00::2');
});

t.test('a zone is no IP SAN: refused, never encoded as another address or 17 bytes', async (t) => {
  const pki = await makePki();
  await t.rejects(pki.issue(ID, { serverNames: ['::1%lo'] }), /"::1%lo" is no IP address a certificate can name/);
  await t.rejects(pki.issue(ID, { serverNames: ['fe80::1%eth0'] }), /"fe80::1%eth0" is no IP address a certificate can name/);
});

t.test('a real client reaches the CA on [::1] by its IP SAN', async (t) => {
  const ca = await startTestCa({ listen: { host: '::1', port: 0 }, serverNames: ['localhost', '0:0:0:0:0:0:0:1'] });
  t.teardown(() => ca.close());
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const status = await new Promise<number | undefined>((resolve, reject) => {
    https.get({ host: '::1', port: ca.server.port, path: '/v1/bundle', ca: bundle }, (res) => {
      res.resume();
      resolve(res.statusCode);
    }).on('error', reject);
  });
  t.equal(status, 200, 'the hostname check passed on the IPv6 SAN');
});
