// An encrypted private key (PKCS#8's ENCRYPTED PRIVATE KEY, or the traditional form's
// Proc-Type: 4,ENCRYPTED) is said to be encrypted, with the command that writes it out plain,
// by check and by run alike. check passed on OpenSSL's "interrupted or cancelled" (it asked for
// a passphrase nobody could type), and both read the traditional form as "holds 0 keys" (a
// review). Keys encrypted by the openssl CLI; real check and run.

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

const WORDS = /the private key is encrypted \(it needs a passphrase\), which meshcar cannot use: write it out unencrypted.*openssl pkey -in KEY -out KEY\.plain/;

t.test('an encrypted key, in either form: check and run say so alike', async (t) => {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'bundle.pem': pki.bundlePem, 'plain.key': leaf.privateKeyPem });
  const forms = {
    pkcs8: execFileSync('openssl', ['pkey', '-in', join(dir, 'plain.key'), '-aes128', '-passout', 'pass:secret'], { encoding: 'utf8' }),
    traditional: execFileSync('openssl', ['pkey', '-in', join(dir, 'plain.key'), '-traditional', '-aes128', '-passout', 'pass:secret'], { encoding: 'utf8' }),
  };
  t.match(forms.traditional, /Proc-Type: 4,ENCRYPTED/, 'the traditional form as openssl writes it');
  for (const [form, pem] of Object.entries(forms)) {
    await writeFile(join(dir, `${form}.key`), pem, { mode: 0o600 });
    const config = join(dir, `${form}.yaml`);
    await writeFile(config, `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, `${form}.key`)}, bundle: ${join(dir, 'bundle.pem')}}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\nadmin: {listen: "127.0.0.1:0"}\n`);
    const check = startMeshcar(['check', '--config', config]);
    t.equal(await check.exited(), 1, `${form}: check exits 1`);
    const checkSaid = check.stderr.join('\n');
    t.match(checkSaid, new RegExp(`identity\\.files\\.key: .*${form}\\.key: ${WORDS.source}`), `${form}: check names the key and says it is encrypted`);
    t.notMatch(checkSaid, /interrupted or cancelled|holds 0/, `${form}: not OpenSSL's words, nor "holds 0"`);

    const run = startMeshcar(['run', '--config', config]);
    t.teardown(() => run.stop('SIGKILL'));
    const code = await Promise.race([run.exited(), new Promise((resolve) => setTimeout(resolve, 20_000, 'still running after 20 s').unref())]);
    t.equal(code, 1, `${form}: run exits 1`);
    const runSaid = [...run.lines.filter((l) => Number(l.level) >= 50).map((l) => String(l.msg)), ...run.stderr].join('\n');
    t.match(runSaid, WORDS, `${form}: run says the same`);
    t.notMatch(runSaid, /interrupted or cancelled|holds 0/, `${form}: not OpenSSL's words, nor "holds 0"`);
  }
});
