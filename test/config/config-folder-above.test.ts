// The repository's own configs sit in config/ (and config/demo/) and name certs/ca and
// config/orders.openapi.yaml from the meshcar folder above them. Run from another folder, check,
// run, doctor and ca serve name that folder to run from ("X, above the config's folder, holds
// it"); ca serve said "run meshcar ca init first", which would have made a second CA.

import t from 'tap';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';

const SPEC = fileURLToPath(new URL('../../config/orders.openapi.yaml', import.meta.url));

/** parent/mesh (the meshcar folder: certs/, config/) and parent, the other folder run from. */
async function meshFolder(t: Tap.Test): Promise<{ parent: string; mesh: string }> {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const parent = t.testdir();
  const mesh = join(parent, 'mesh');
  await mkdir(join(mesh, 'certs'), { recursive: true });
  await mkdir(join(mesh, 'config', 'demo'), { recursive: true });
  await writeFile(join(mesh, 'certs', 'svid.crt'), leaf.chainPem);
  await writeFile(join(mesh, 'certs', 'svid.key'), leaf.privateKeyPem, { mode: 0o600 });
  await writeFile(join(mesh, 'certs', 'bundle.pem'), pki.bundlePem);
  await copyFile(SPEC, join(mesh, 'config', 'orders.openapi.yaml'));
  const identity = 'identity:\n  files: {cert: certs/svid.crt, key: certs/svid.key, bundle: certs/bundle.pem}\n';
  await writeFile(join(mesh, 'config', 'demo', 'orders.yaml'), `service: orders\ntrustDomain: mesh.local\n${identity}inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n`);
  // the spec relative, the identity files absolute: run reads the spec first
  const absolute = identity.replace(/certs\//g, `${mesh}/certs/`);
  await writeFile(join(mesh, 'config', 'spec.yaml'), `service: orders\ntrustDomain: mesh.local\n${absolute}inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1", openapi: {spec: config/orders.openapi.yaml}}\nadmin: {listen: "127.0.0.1:0"}\n`);
  return { parent, mesh };
}

async function outcome(args: string[], cwd: string): Promise<{ status: number | null; stderr: string[]; text: string }> {
  const proc = startMeshcar(args, { cwd });
  const status = await proc.exited();
  return { status, stderr: proc.stderr, text: [...proc.stderr, ...proc.lines.map((line) => String(line.msg))].join('\n') };
}

t.test('check and doctor from another folder name the meshcar folder, two levels above the config', async (t) => {
  const { parent, mesh } = await meshFolder(t);
  const check = await outcome(['check', '--config', 'mesh/config/demo/orders.yaml'], parent);
  t.equal(check.status, 1);
  t.match(check.text, `identity.files.cert: ${join(parent, 'certs/svid.crt')} does not exist (relative paths are resolved against the working directory, ${parent}); ${mesh}, above the config's folder, holds it (${join(mesh, 'certs/svid.crt')}): run meshcar from ${mesh}, or write the path absolute`);
  const doctor = await outcome(['doctor', '--config', 'mesh/config/demo/orders.yaml'], parent);
  t.match(doctor.text, `✗ paths: certs/svid.crt, certs/svid.key, certs/bundle.pem: missing from the working directory (${parent}), which relative paths are read from; ${mesh}, above the config's folder, holds them — fix: run meshcar from ${mesh}`);
  const fromMesh = await outcome(['check', '--config', 'config/demo/orders.yaml'], mesh);
  t.equal(fromMesh.status, 0, fromMesh.text);
});

t.test("run from another folder: a missing OpenAPI spec names the folder that holds it", async (t) => {
  const { parent, mesh } = await meshFolder(t);
  const run = await outcome(['run', '--config', 'mesh/config/spec.yaml'], parent);
  t.equal(run.status, 1);
  t.equal(run.stderr.length, 1, run.stderr.join('\n'));
  t.match(run.stderr[0], `meshcar: inbound.openapi.spec: ${join(parent, 'config/orders.openapi.yaml')}: the spec file does not exist (relative paths are resolved against the working directory); ${mesh}, above the config's folder, holds it (${join(mesh, 'config/orders.openapi.yaml')}): run meshcar from ${mesh}, or write the path absolute`);
});

t.test('ca serve from another folder: run from the meshcar folder, not "ca init first"', async (t) => {
  const { parent, mesh } = await meshFolder(t);
  const init = await outcome(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'mesh.local'], mesh);
  t.equal(init.status, 0, init.text);
  await writeFile(join(mesh, 'config', 'ca.yaml'), 'trustDomain: mesh.local\ndir: certs/ca\nlisten: 127.0.0.1:0\n');
  const serve = await outcome(['ca', 'serve', '--config', 'mesh/config/ca.yaml'], parent);
  t.equal(serve.status, 1);
  t.equal(serve.stderr.length, 1, serve.stderr.join('\n'));
  t.equal(serve.stderr[0], `meshcar: ${join(parent, 'certs/ca')}: does not exist; relative paths are read from the working directory (${parent}), and ${mesh}, above the config's folder, holds it (${join(mesh, 'certs/ca')}): run meshcar from ${mesh}, or write the path absolute`);
  // a folder that is nowhere: the fix is still to make it, with the config's trust domain
  await writeFile(join(mesh, 'config', 'nowhere.yaml'), 'trustDomain: example.org\ndir: certs/nowhere\nlisten: 127.0.0.1:0\n');
  const nowhere = await outcome(['ca', 'serve', '--config', 'mesh/config/nowhere.yaml'], parent);
  t.equal(nowhere.stderr.join('\n'), `meshcar: ${join(parent, 'certs/nowhere')}: does not exist; make the CA first: meshcar ca init --dir ${join(parent, 'certs/nowhere')} --trust-domain example.org`);
});
