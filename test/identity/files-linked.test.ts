// identity.files naming symlinks into another folder (a config folder linking to where a tool
// keeps its certificates, certbot's live/ → archive/ layout): the writer changes the files in
// that folder, and the folder of the configured names sees no event. Those folders are watched
// too, followed anew when a link is pointed elsewhere, and the new set serves new handshakes.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makePki, type IssuedLeaf } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { identityFromFiles } from '../../src/identity/bootstrap.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import type { WorkloadIdentity } from '../../src/identity/workload-identity.js';

const ID = 'spiffe://mesh.test/svc/orders';

/** Resolves with the next rotation's serial, or rejects after `ms`: a rotation that never comes fails, it does not hang. */
function nextRotation(identity: WorkloadIdentity, ms = 15_000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no rotation within ${ms} ms`)), ms)));
  return Promise.race([once(identity, 'rotated').then(([svid]) => (svid as { serialHex: string }).serialHex), late]).finally(() => clearTimeout(timer));
}

/** conf/svid.crt, svid.key and bundle.pem as links to ../live/cert.pem, key.pem, bundle.pem; the identity read from them. */
async function startLinked(conf: string) {
  const files = { cert: join(conf, 'svid.crt'), key: join(conf, 'svid.key'), bundle: join(conf, 'bundle.pem') };
  await symlink('../live/cert.pem', files.cert);
  await symlink('../live/key.pem', files.key);
  await symlink('../live/bundle.pem', files.bundle);
  return identityFromFiles({ spiffeId: ID, files, debounceMs: 50, logger: memoryLogger([]) });
}

t.test('files reached through symlinks into another folder: a change there is picked up', async (t) => {
  const pki = await makePki();
  const root = await mkdtemp(join(tmpdir(), 'meshcar-linked-'));
  const conf = join(root, 'conf');
  const live = join(root, 'live');
  const archive = join(root, 'archive');
  await Promise.all([mkdir(conf), mkdir(live), mkdir(archive)]);
  // conf/* → ../live/* (plain files for the key and bundle; the cert one link further, into archive/)
  const writeSet = async (leaf: IssuedLeaf, n: number) => {
    await writeFile(join(archive, `cert${n}.pem`), leaf.chainPem);
    await writeFile(join(live, `.key.${n}`), leaf.privateKeyPem, { mode: 0o600 });
    await rename(join(live, `.key.${n}`), join(live, 'key.pem'));
  };
  const pointCert = async (n: number) => {
    await symlink(`../archive/cert${n}.pem`, join(live, `.cert.${n}`));
    await rename(join(live, `.cert.${n}`), join(live, 'cert.pem'));
  };
  const first = await pki.issue(ID);
  await writeSet(first, 1);
  await pointCert(1);
  await writeFile(join(live, 'bundle.pem'), pki.bundlePem);

  const running = await startLinked(conf);
  const { identity } = running;
  const server = tls.createServer({ ...identity.tls().options, ...MTLS_SERVER_OPTIONS });
  identity.attachServer(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    running.stop();
    server.close();
    await rm(root, { recursive: true, force: true });
  });
  const client = await pki.issue('spiffe://mesh.test/svc/frontend');
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: pki.bundlePem, key: client.privateKeyPem, cert: client.chainPem, checkServerIdentity: () => undefined }, () => {
        resolve(socket.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '');
        socket.destroy();
      });
      socket.once('error', reject);
    });
  t.equal(await servedSerial(), first.serialHex, 'the first set serves');

  // the certbot way: a new archive file, the live link pointed at it, the key renamed in
  const second = await pki.issue(ID);
  const rotated = nextRotation(identity);
  await writeSet(second, 2);
  await pointCert(2);
  t.equal(await rotated, second.serialHex, 'a change in live/ and archive/ is picked up');
  t.equal(await servedSerial(), second.serialHex, 'and serves new handshakes');

  // again: archive/cert3.pem is watched through the new link as well
  const third = await pki.issue(ID);
  const again = nextRotation(identity);
  await writeSet(third, 3);
  await pointCert(3);
  t.equal(await again, third.serialHex, 'the next change too');
  t.equal(await servedSerial(), third.serialHex, 'and serves');
});

t.test('a change in a linked folder right at the start, before its watch began, is picked up', async (t) => {
  const pki = await makePki();
  const root = await mkdtemp(join(tmpdir(), 'meshcar-linked-start-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const conf = join(root, 'conf');
  const live = join(root, 'live');
  await Promise.all([mkdir(conf), mkdir(live)]);
  const first = await pki.issue(ID);
  const second = await pki.issue(ID);
  await writeFile(join(live, 'cert.pem'), first.chainPem);
  await writeFile(join(live, 'key.pem'), first.privateKeyPem, { mode: 0o600 });
  await writeFile(join(live, 'bundle.pem'), pki.bundlePem);
  const running = await startLinked(conf);
  t.teardown(() => running.stop());
  const rotated = nextRotation(running.identity);
  // synchronously, before the watch of live/ (found by following the links, asynchronously)
  // can begin: no event of this change ever reaches it
  writeFileSync(join(live, '.cert'), second.chainPem);
  writeFileSync(join(live, '.key'), second.privateKeyPem, { mode: 0o600 });
  renameSync(join(live, '.key'), join(live, 'key.pem'));
  renameSync(join(live, '.cert'), join(live, 'cert.pem'));
  t.equal(await rotated, second.serialHex, 'the new set is read once the watch began');
});
