// A reload that points identity.files at files that each read fine but do not work together
// (a key of another certificate, another service's certificate and key): applied, the running
// identity kept, and the answer and the log warn that the next start would fail on it, in
// check's words at identity.files.cert. The files were checked one by one only, so the reload
// answered 200 with no warning while `meshcar check` and `run` refused the set.
// A real Sidecar over real files and a real admin port (test/helpers/files-sidecar.ts).

import t from 'tap';
import http from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from './helpers/pki.js';
import { startFilesSidecar, type FilesSidecar } from './helpers/files-sidecar.js';

interface Answer {
  readonly status: number;
  readonly body: { applied?: string[]; restartRequired?: string[]; warnings?: string[] };
}

function postReload(port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/reload', method: 'POST', agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** orders.yaml with identity.files' `cert` and `key` named anew, then POST /reload. */
async function reloadWith(sidecar: FilesSidecar, dir: string, files: { cert: string; key: string }): Promise<Answer> {
  const file = join(dir, 'orders.yaml');
  const text = (await readFile(file, 'utf8')).replace(/cert: [^,]*, key: [^,]*,/, `cert: ${join(dir, files.cert)}, key: ${join(dir, files.key)},`);
  await writeFile(file, text);
  return postReload(sidecar.adminPort);
}

t.test('identity.files that the next start refuses as a set: a warning in the answer and the log', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir();
  const sidecar = await startFilesSidecar(pki, dir);
  t.teardown(() => sidecar.close());
  const second = await pki.issue('spiffe://mesh.local/svc/orders');
  const billing = await pki.issue('spiffe://mesh.local/svc/billing');
  await writeFile(join(dir, 'second.key'), second.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'billing.crt'), billing.chainPem);
  await writeFile(join(dir, 'billing.key'), billing.privateKeyPem, { mode: 0o600 });
  const configFile = join(dir, 'orders.yaml');
  const bundle = join(dir, 'bundle.pem');
  const warned = (from: number) => sidecar.lines.slice(from).filter((l) => l.level === 40 && String(l.msg).endsWith(': the next start will fail on it'));

  // the key of another certificate (each file alone is a good PEM key and certificate)
  let from = sidecar.lines.length;
  const otherKey = await reloadWith(sidecar, dir, { cert: 'svid.crt', key: 'second.key' });
  t.equal(otherKey.status, 200, 'applied: the running identity is kept');
  t.same(otherKey.body.restartRequired, ['identity.files.key']);
  t.same(otherKey.body.applied, []);
  const keySet = `${join(dir, 'svid.crt')} / ${join(dir, 'second.key')} / ${bundle}`;
  t.equal(otherKey.body.warnings?.length, 1, 'one warning');
  t.match(otherKey.body.warnings?.[0], `${configFile}: identity.files.cert: ${keySet}: `);
  t.match(otherKey.body.warnings?.[0], /the private key does not match the certificate.*\(run refuses this set\)$/);
  t.same(warned(from).map((l) => l.msg), [`${otherKey.body.warnings?.[0]}: the next start will fail on it`], 'and the same in the log');

  // another service's certificate and its own key: the SPIFFE ID is not this sidecar's
  from = sidecar.lines.length;
  const otherId = await reloadWith(sidecar, dir, { cert: 'billing.crt', key: 'billing.key' });
  t.equal(otherId.status, 200);
  t.same(otherId.body.restartRequired, ['identity.files.cert', 'identity.files.key']);
  t.equal(otherId.body.warnings?.length, 1, 'one warning');
  t.match(otherId.body.warnings?.[0], `${configFile}: identity.files.cert: ${join(dir, 'billing.crt')} / ${join(dir, 'billing.key')} / ${bundle}: `);
  t.match(otherId.body.warnings?.[0], /spiffe:\/\/mesh\.local\/svc\/billing.*spiffe:\/\/mesh\.local\/svc\/orders.*\(run refuses this set\)$/);
  t.equal(warned(from).length, 1, 'logged');

  // back to the running set: nothing to warn of
  const back = await reloadWith(sidecar, dir, { cert: 'svid.crt', key: 'svid.key' });
  t.equal(back.status, 200);
  t.same(back.body, { applied: [], restartRequired: [] }, 'no warnings');
  t.match((await sidecar.adminGet('/identity')).toString(), 'spiffe://mesh.local/svc/orders', 'the running identity was kept throughout');
});
