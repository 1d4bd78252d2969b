// A CA config whose dir holds a CA of another trust domain (make ca TRUST_DOMAIN=example.org
// under a config saying mesh.local): check refuses it at trustDomain, as ca serve does, and both
// say what to change. It passed check and was refused by serve with no fix. So does a CA folder
// others can write to (check called it valid; serve refused it).

import t from 'tap';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMeshcar } from '../helpers/process.js';

async function outcome(args: string[], cwd: string): Promise<{ status: number | null; text: string }> {
  const proc = startMeshcar(args, { cwd });
  const status = await proc.exited();
  return { status, text: [...proc.stderr, ...proc.lines.map((line) => String(line.msg))].join('\n') };
}

t.test('a CA of another trust domain: check and ca serve refuse it, naming the two fixes', async (t) => {
  const dir = t.testdir();
  t.equal((await outcome(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'example.org'], dir)).status, 0);
  await writeFile(join(dir, 'ca.yaml'), 'trustDomain: mesh.local\ndir: certs/ca\nlisten: 127.0.0.1:0\n');
  const fix = 'set trustDomain: example.org in the CA config (and every sidecar\'s), or point dir at a CA made for mesh.local (meshcar ca init --dir NEW_DIR --trust-domain mesh.local)';
  const check = await outcome(['check', '--config', 'ca.yaml'], dir);
  t.equal(check.status, 1, 'check refuses it');
  t.match(check.text, `ca.yaml:1:1: trustDomain: the CA in ${join(dir, 'certs/ca')} is for trust domain "example.org", not "mesh.local": ${fix}`);
  const serve = await outcome(['ca', 'serve', '--config', 'ca.yaml'], dir);
  t.equal(serve.status, 1);
  t.match(serve.text, `is for trust domain "example.org", not "mesh.local" (the config's trustDomain): ${fix}`);

  await writeFile(join(dir, 'ok.yaml'), 'trustDomain: example.org\ndir: certs/ca\nlisten: 127.0.0.1:0\n');
  const ok = await outcome(['check', '--config', 'ok.yaml'], dir);
  t.equal(ok.status, 0, ok.text);
});

t.test('a CA folder its group can write to: check refuses it at dir, as ca serve does', async (t) => {
  const dir = t.testdir();
  t.equal((await outcome(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'mesh.local'], dir)).status, 0);
  await writeFile(join(dir, 'ca.yaml'), 'trustDomain: mesh.local\ndir: certs/ca\nlisten: 127.0.0.1:0\n');
  t.equal((await outcome(['check', '--config', 'ca.yaml'], dir)).status, 0, 'a private folder passes');
  // what the kubelet's fsGroup pass leaves on a volume whose root did not match
  await chmod(join(dir, 'certs/ca'), 0o2770);
  const check = await outcome(['check', '--config', 'ca.yaml'], dir);
  t.equal(check.status, 1, 'check refuses it');
  t.match(check.text, `ca.yaml:2:1: dir: the CA folder ${join(dir, 'certs/ca')} is writable by its group (mode 2770), who could replace its keys; run "chmod 700`);
  t.equal(check.text.trim().split('\n').length, 1, `said once (it was twice: the folder check and ca status's own): ${check.text}`);
  const serve = await outcome(['ca', 'serve', '--config', 'ca.yaml'], dir);
  t.equal(serve.status, 1, 'as ca serve does');
  t.match(serve.text, 'is writable by its group (mode 2770)');
});
