// A newcomer runs meshcar from another folder than the config's (`meshcar run --config
// site/orders.yaml` from site's parent): the config's relative paths are read from the working
// directory, where they are missing, while the config's folder holds them. check, run and
// doctor each say so and name the folder to run from; run from that folder nothing is added.

import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

async function site(t: Tap.Test): Promise<{ parent: string; folder: string }> {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const parent = t.testdir();
  const folder = join(parent, 'site');
  await mkdir(join(folder, 'certs'), { recursive: true });
  await writeFile(join(folder, 'certs', 'svid.crt'), leaf.chainPem);
  await writeFile(join(folder, 'certs', 'svid.key'), leaf.privateKeyPem, { mode: 0o600 });
  await writeFile(join(folder, 'certs', 'bundle.pem'), pki.bundlePem);
  await writeFile(
    join(folder, 'orders.yaml'),
    'service: orders\ntrustDomain: mesh.local\nidentity:\n  files: {cert: certs/svid.crt, key: certs/svid.key, bundle: certs/bundle.pem}\n' +
      'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n',
  );
  return { parent, folder };
}

async function outcome(args: string[], cwd: string): Promise<{ status: number | null; text: string }> {
  const proc = startMeshcar(args, { cwd });
  const status = await proc.exited();
  return { status, text: [...proc.stderr, ...proc.lines.map((line) => String(line.msg))].join('\n') };
}

t.test('check from the parent: each missing file names the config folder to run from', async (t) => {
  const { parent, folder } = await site(t);
  const { status, text } = await outcome(['check', '--config', 'site/orders.yaml'], parent);
  t.equal(status, 1);
  for (const key of ['cert', 'key', 'bundle']) {
    t.match(text, `identity.files.${key}: ${join(parent, 'certs')}`, `${key} named as read`);
  }
  t.match(text, `the config's folder holds it (${join(folder, 'certs', 'svid.crt')}): run meshcar from ${folder}, or write the path absolute`);
  const fromSite = await outcome(['check', '--config', 'orders.yaml'], folder);
  t.equal(fromSite.status, 0, fromSite.text);
});

t.test('run from the parent: the one stderr line names the folder to run from', async (t) => {
  const { parent, folder } = await site(t);
  const proc = startMeshcar(['run', '--config', 'site/orders.yaml'], { cwd: parent });
  t.equal(await proc.exited(), 1);
  t.equal(proc.stderr.length, 1, proc.stderr.join('\n'));
  t.match(proc.stderr[0], new RegExp(`^meshcar: identity\\.files\\.\\w+: cannot read ${parent}/certs/.*ENOENT.*; relative paths are read from the working directory \\(${parent}\\), and the config's folder holds it \\(${folder}/certs/.*\\): run meshcar from ${folder}, or write the path absolute$`));
});

t.test('doctor from the parent: a paths line says where to run it; from the folder, none', async (t) => {
  const { parent, folder } = await site(t);
  const { status, text } = await outcome(['doctor', '--config', 'site/orders.yaml'], parent);
  t.equal(status, 1);
  t.match(text, `✗ paths: certs/svid.crt, certs/svid.key, certs/bundle.pem: missing from the working directory (${parent}), which relative paths are read from; the config's folder (${folder}) holds them — fix: run meshcar from ${folder}`);
  const fromSite = await outcome(['doctor', '--config', 'orders.yaml'], folder);
  t.notMatch(fromSite.text, /paths:/);
  t.match(fromSite.text, /✓ identity: spiffe:\/\/mesh\.local\/svc\/orders/);
});
