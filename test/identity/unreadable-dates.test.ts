// A certificate whose notBefore or notAfter this host cannot read (OpenSSL prints "Bad time
// value": month 13, no zone), signed by the real key above it: validateSvid refuses the set,
// naming the certificate (and its file when known) and the date, whichever of leaf,
// intermediate or root carries it. It passed: NaN compares false, so it was neither expired
// nor not yet valid, and its notAfter was an Invalid Date that toISOString() threw on.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { makePki } from '../helpers/pki.js';
import { MONTH_13, redated } from '../helpers/odd-dates.js';
import { validateSvid } from '../../src/identity/svid.js';
import { loadSvidFiles } from '../../src/identity/files-source.js';
import { readPrintedDate } from '../../src/pki/cert-dates.js';

const ID = 'spiffe://mesh.local/svc/orders';
const CANNOT = 'has a validity date this host cannot read';

t.test('the leaf, its issuer or the root with an unreadable date: refused, naming which and the date', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue(ID);
  t.equal(new X509Certificate(await redated(leaf.certificatePem, pki.issuer.key, { notAfter: MONTH_13 })).validTo, 'Bad time value', 'Node reads it, and shows the date so');
  const cases = [
    { name: 'leaf notAfter', chainPem: (await redated(leaf.certificatePem, pki.issuer.key, { notAfter: MONTH_13 })) + pki.issuerPem, bundlePem: pki.bundlePem, want: `certificate 1 of the certificate chain ${CANNOT}: its notAfter is "Bad time value"` },
    { name: 'leaf notBefore (GeneralizedTime, no zone)', chainPem: (await redated(leaf.certificatePem, pki.issuer.key, { notBefore: ['G', '20250101000000'] })) + pki.issuerPem, bundlePem: pki.bundlePem, want: `certificate 1 of the certificate chain ${CANNOT}: its notBefore is "Bad time value"` },
    { name: 'issuer', chainPem: leaf.certificatePem + (await redated(pki.issuerPem, pki.root.key, { notBefore: MONTH_13, notAfter: MONTH_13 })), bundlePem: pki.bundlePem, want: `certificate 2 of the certificate chain ${CANNOT}: its notBefore is "Bad time value" and its notAfter is "Bad time value"` },
    { name: 'root', chainPem: leaf.chainPem, bundlePem: await redated(pki.rootPem, pki.root.key, { notAfter: MONTH_13 }), want: `certificate 1 of the trust bundle ${CANNOT}: its notAfter is "Bad time value"` },
  ];
  for (const c of cases) {
    t.throws(() => validateSvid({ privateKeyPem: leaf.privateKeyPem, chainPem: c.chainPem, bundlePem: c.bundlePem }, ID), { code: 'identity_invalid', message: c.want }, c.name);
  }
});

t.test('identity.files: the refusal names the file the certificate is in', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue(ID);
  const dir = t.testdir({ 'svid.key': leaf.privateKeyPem, 'svid.crt': leaf.chainPem });
  const files = { cert: join(dir, 'svid.crt'), key: join(dir, 'svid.key'), bundle: join(dir, 'bundle.pem') };
  await writeFile(files.bundle, await redated(pki.rootPem, pki.root.key, { notBefore: MONTH_13 }));
  await t.rejects(loadSvidFiles(files, ID), { message: `${files.cert} / ${files.key} / ${files.bundle}: the certificate at ${files.bundle} (certificate 1 of the trust bundle) ${CANNOT}: its notBefore is "Bad time value"` });
});

t.test('printed dates: read as written, year 0 and 1 included (Date.parse makes them 2000 and 2001)', async (t) => {
  t.equal(readPrintedDate('Jan  1 00:00:00 2030 GMT')?.toISOString(), '2030-01-01T00:00:00.000Z');
  t.equal(readPrintedDate('Dec 31 23:59:59 9999 GMT')?.toISOString(), '9999-12-31T23:59:59.000Z');
  t.equal(readPrintedDate('Jan  1 00:00:00.5 2025 GMT')?.toISOString(), '2025-01-01T00:00:00.500Z');
  t.equal(readPrintedDate('Jan  1 00:00:00 0 GMT')?.toISOString(), '0000-01-01T00:00:00.000Z');
  t.equal(readPrintedDate('Dec 31 23:59:59 1 GMT')?.toISOString(), '0001-12-31T23:59:59.000Z');
  t.equal(readPrintedDate('Bad time value'), undefined);
  t.equal(readPrintedDate('Feb 30 00:00:00 2025 GMT'), undefined);
});
