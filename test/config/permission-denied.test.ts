// meshcar run as another user than the one who made its files (a newcomer's sudo, a service
// user): "EACCES: permission denied, open '.../svid.crt'" blamed the file when a 0700 folder on
// the way kept that user out. check, run and doctor name the part of the path that denies, with
// its mode and owner. Needs root, to make the files and run meshcar as uid 65534 (setpriv).

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
const hasSetpriv = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

if (process.getuid?.() !== 0 || !hasSetpriv) {
  t.plan(0, 'needs root and setpriv, to run meshcar as another user');
} else {
  /** A folder nobody may enter (`certs`, 0700) holding the SVID, and a bundle 0600 in an open one. */
  const site = async (t: Tap.Test) => {
    const pki = await makePki('mesh.local');
    const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
    const root = await mkdtemp(join(tmpdir(), 'meshcar-denied-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    await chmod(root, 0o755);
    await mkdir(join(root, 'certs'), { mode: 0o700 });
    await mkdir(join(root, 'open'), { mode: 0o755 });
    await writeFile(join(root, 'certs', 'svid.crt'), leaf.chainPem);
    await writeFile(join(root, 'certs', 'svid.key'), leaf.privateKeyPem, { mode: 0o600 });
    await writeFile(join(root, 'open', 'bundle.pem'), pki.bundlePem, { mode: 0o600 });
    const config = join(root, 'orders.yaml');
    await writeFile(
      config,
      `service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: ${root}/certs/svid.crt, key: ${root}/certs/svid.key, bundle: ${root}/open/bundle.pem}\n` +
        'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n',
      { mode: 0o644 },
    );
    return { root, config };
  };

  const asNobody = async (args: string[]) => {
    const proc = startMeshcar(args, { prefix: AS_NOBODY, cwd: '/' });
    const status = await proc.exited();
    return { status, stderr: proc.stderr, text: [...proc.stderr, ...proc.lines.map((line) => String(line.msg))].join('\n') };
  };

  t.test('check names the folder that keeps the user out, and the file it may not read', async (t) => {
    const { root, config } = await site(t);
    const { status, text } = await asNobody(['check', '--config', config]);
    t.equal(status, 1);
    t.match(text, `identity.files.cert: cannot read ${root}/certs/svid.crt: EACCES: permission denied, stat '${root}/certs/svid.crt'; the folder ${root}/certs (mode 0700, owner uid 0) does not let uid 65534 in`);
    t.match(text, `identity.files.bundle: cannot read ${root}/open/bundle.pem: permission denied; ${root}/open/bundle.pem (mode 0600, owner uid 0) is not readable by uid 65534`);
  });

  t.test('run: its one stderr line names the folder', async (t) => {
    const { root, config } = await site(t);
    const { status, stderr } = await asNobody(['run', '--config', config]);
    t.equal(status, 1);
    t.equal(stderr.length, 1, stderr.join('\n'));
    t.match(stderr[0], new RegExp(`^meshcar: identity\\.files\\.\\w+: cannot read ${root}/.*EACCES.*; (the folder ${root}/certs \\(mode 0700, owner uid 0\\) does not let uid 65534 in|${root}/open/bundle\\.pem \\(mode 0600, owner uid 0\\) is not readable by uid 65534): run meshcar as its owner`));
  });

  t.test('doctor: the identity line names the folder', async (t) => {
    const { root, config } = await site(t);
    const { status, text } = await asNobody(['doctor', '--config', config]);
    t.equal(status, 1);
    t.match(text, new RegExp(`✗ identity: cannot read the SVID files: EACCES: permission denied, open '${root}/[^']+'; (the folder ${root}/certs \\(mode 0700, owner uid 0\\) does not let uid 65534 in|${root}/open/bundle\\.pem \\(mode 0600, owner uid 0\\) is not readable by uid 65534)`));
  });
}
