// `meshcar doctor` on identity.files whose certificate has a validity date Node cannot read
// (OpenSSL prints "Bad time value"; here a notAfter in month 13, signed by the real issuer): a
// ✗ identity line naming the file and the date, exit 1. The set passed every date check (NaN
// compares false) and doctor threw RangeError: Invalid time value formatting its expiry (exit 70).

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { MONTH_13, redated } from '../helpers/odd-dates.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

function doctor(file: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, 'doctor', '--config', file, '--timeout', '1s'], { timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number | null }).code ?? (err as { signal?: string }).signal ?? -1) : 0, stdout, stderr }),
    ),
  );
}

t.test('an SVID whose notAfter this host cannot read: a ✗ identity line and exit 1, no stack trace', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem });
  const path = (name: string) => join(dir, name);
  await writeFile(path('svid.crt'), (await redated(leaf.certificatePem, pki.issuer.key, { notAfter: MONTH_13 })) + pki.issuerPem);
  await writeFile(path('svid.key'), leaf.privateKeyPem, { mode: 0o600 });
  const files = `{cert: ${path('svid.crt')}, key: ${path('svid.key')}, bundle: ${path('bundle.pem')}}`;
  await writeFile(path('orders.yaml'), `service: orders\ntrustDomain: mesh.local\nidentity: {files: ${files}}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n`);
  const result = await doctor(path('orders.yaml'));
  t.equal(result.code, 1, `exit 1 (${result.stderr})`);
  const line = `✗ identity: ${path('svid.crt')}: the certificate at ${path('svid.crt')} (certificate 1 of the certificate chain) has a validity date this host cannot read: its notAfter is "Bad time value" — fix: whoever issued that certificate must issue it again with dates in RFC 5280 form`;
  t.ok(result.stdout.includes(line), `the identity line names the file and the date:\n${result.stdout}`);
  t.notMatch(result.stderr, /RangeError|\n\s+at /, 'no stack trace');
});
