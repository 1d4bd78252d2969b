// identity.files when the whole folder is replaced (review finding 12): `mv certs certs.old`,
// then a new `certs` written at the same path. The sidecar (the real command line) must pick up
// the new files: the new serial shows in its /identity within a bounded wait. A watch that
// followed the old folder's inode logged one ENOENT and never saw the new files.

import t from 'tap';
import http from 'node:http';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki, type IssuedLeaf } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';
import { waitFor } from '../helpers/mesh.js';

const ID = 'spiffe://mesh.local/svc/orders';

function served(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/identity' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(String((JSON.parse(body) as { serial?: string }).serial ?? '').toLowerCase()));
      })
      .on('error', reject);
  });
}

async function writeSet(dir: string, leaf: IssuedLeaf): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'svid.crt'), leaf.chainPem);
  await writeFile(join(dir, 'svid.key'), leaf.privateKeyPem, { mode: 0o600 });
  await writeFile(join(dir, 'bundle.pem'), leaf.bundlePem);
}

t.test('a replaced identity folder is picked up; /identity shows the new serial', async (t) => {
  const pki = await makePki('mesh.local');
  const root = t.testdir();
  const certs = join(root, 'certs');
  const [first, second, third] = [await pki.issue(ID), await pki.issue(ID), await pki.issue(ID)];
  await writeSet(certs, first);
  await writeFile(
    join(root, 'orders.yaml'),
    `service: orders\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(certs, 'svid.crt')}, key: ${join(certs, 'svid.key')}, bundle: ${join(certs, 'bundle.pem')}}}\n` +
      `inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n`,
  );
  const sidecar = startMeshcar(['run', '--config', join(root, 'orders.yaml')]);
  t.teardown(() => sidecar.stop());
  const line = await sidecar.waitFor((l) => l.msg === 'admin listening');
  const admin = (line.address as { port: number }).port;
  // the admin port may listen a moment before the identity is loaded (a loaded CI box showed it)
  await waitFor(async () => (await served(admin)) !== '', 8000, 'an identity on /identity', sidecar);
  t.equal(await served(admin), first.serialHex.toLowerCase(), 'the first set serves');

  // as the review did it: the folder moved away (one refusal while it is gone), then a new one
  await rename(certs, join(root, 'certs.old'));
  await sidecar.waitFor((l) => /refused the new identity files.*ENOENT/.test(String(l.msg)), 5000);
  await writeSet(certs, second);
  await waitFor(async () => (await served(admin)) === second.serialHex.toLowerCase(), 8000, 'the new folder’s serial on /identity', sidecar);
  t.pass('the new folder’s certificate serves');

  // and the new folder is itself watched: a file rewritten in it is picked up too
  await writeSet(certs, third);
  await waitFor(async () => (await served(admin)) === third.serialHex.toLowerCase(), 8000, 'a rewrite inside the new folder', sidecar);
  t.pass('later changes in the new folder are seen');
});
