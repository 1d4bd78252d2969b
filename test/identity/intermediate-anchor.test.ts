// An `identity.files` bundle whose certificate above the SVID is an intermediate with no root
// beside it (a cert-manager CA issuer backed by an intermediate writes its ca.crt so) is
// refused, the old identity kept: TLS peers anchor only on a self-signed root, and such a
// bundle, taken on a hot reload, failed every handshake from then on (callers refused with
// unknown_ca, clients trusting it with UNABLE_TO_GET_ISSUER_CERT) while /ready stayed 200.
// Real `meshcar run`, two meshcar CAs, a real HTTP/2 caller, and `meshcar check`.

import t from 'tap';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { callerSession, startTwoRootFilesSidecar } from '../helpers/two-root-files.js';
import { startMeshcar } from '../helpers/process.js';

/** The PEM blocks of a file, in order. */
const blocks = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];

t.test('a bundle holding the issuing intermediate but not its root is refused on reload; callers and clients go on', async (t) => {
  const dir = t.testdir();
  const setup = await startTwoRootFilesSidecar(t, dir);
  const { own, caller, files, sidecar } = setup;
  const proc = sidecar.process!;
  const { get } = callerSession(t, setup);
  t.equal(await get(), 404, 'the caller is answered');

  // the sidecar's own issuer (the second block of its chain) in place of its root
  const intermediate = blocks(own.cert)[1] as string;
  t.ok(intermediate, 'the chain holds its issuer');
  const from = proc.lines.length;
  await writeFile(`${files.bundle}.new`, intermediate + caller.bundle);
  await rename(`${files.bundle}.new`, files.bundle);
  const refusal = await proc.waitFor((line) => proc.lines.indexOf(line) >= from && /refused the new identity files/.test(String(line.msg)), 10_000);
  t.match(refusal.msg, /is not a root \(it is not self-signed.*add that root to the bundle/, 'refused, saying why');
  t.equal(await get(), 404, 'the open connection still answers');
  t.equal(await callerSession(t, setup).get(), 404, 'a new connection verifies the sidecar and is answered');

  // meshcar check judges the set as run does
  const config = join(dir, 'check.yaml');
  await writeFile(config, `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${files.cert}, key: ${files.key}, bundle: ${files.bundle}}\ninbound:\n  listen: 127.0.0.1:0\n  app: http://127.0.0.1:1\n`);
  const check = startMeshcar(['check', '--config', config]);
  t.equal(await check.exited(), 1, 'check refuses it');
  t.match(check.stderr.join('\n'), /is not a root \(it is not self-signed/);
});
