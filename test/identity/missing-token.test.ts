// A join token file that is not there: `check` (at identity.ca.token) and `run` (when it needs
// the token: no SVID on disk) name the command that writes one for this service at that path,
// and `make token` when the path is the one it writes. A run from another folder, beside a
// config whose folder holds the token, is told that instead (config-folder.test.ts).

import t from 'tap';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { makePki } from '../helpers/pki.js';
import { startMeshcar } from '../helpers/process.js';
import { checkConfigFile } from '../../src/config/load-any.js';
import { formatIssue } from '../../src/config/issues.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

function sidecarYaml(bundle: string, token: string, dir: string): string {
  return `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "https://127.0.0.1:8443", bundle: ${bundle}, token: ${token}}\n  dir: ${dir}\ninbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\n`;
}

t.test('check: a missing join token comes with the command that writes it', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, certs: {} });
  const token = join(dir, 'tokens', 'order.token');
  await writeFile(join(dir, 'orders.yaml'), sidecarYaml(join(dir, 'bundle.pem'), token, join(dir, 'identity')));
  const issues = (await checkConfigFile(join(dir, 'orders.yaml'))).issues.map(formatIssue);
  t.equal(issues.length, 1, issues.join('\n'));
  t.match(issues[0], /identity\.ca\.token: .*order\.token does not exist .*; write one with your CA's folder: meshcar ca token --dir CA_DIR --service orders --out \S*tokens\/order\.token$/);
  t.notMatch(issues[0], /make token/, 'make token writes certs/orders.token, not this path');

  // the path make token writes, from the folder it runs in
  const cwd = process.cwd();
  process.chdir(dir);
  t.teardown(() => process.chdir(cwd));
  await writeFile(join(dir, 'make.yaml'), sidecarYaml('bundle.pem', 'certs/orders.token', 'identity'));
  const made = (await checkConfigFile(join(dir, 'make.yaml'))).issues.map(formatIssue);
  t.match(made.join('\n'), /--out \S*certs\/orders\.token \(or make token SERVICE=orders in the meshcar folder\)/);
});

t.test('run: no SVID on disk and no token file: the command that writes one', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem });
  const tokenPath = join(dir, 'orders.token');
  await t.rejects(
    obtainIdentity({ spiffeId: ORDERS, trustDomain: 'mesh.local', dir: join(dir, 'identity'), ca: { url: 'https://127.0.0.1:1', bundlePath: join(dir, 'bundle.pem'), tokenPath }, logger: pino({ level: 'silent' }) }),
    { code: 'identity_invalid', message: /cannot read the join token file .*orders\.token: ENOENT.*; write one with your CA's folder: meshcar ca token --dir CA_DIR --service orders --out \S*orders\.token$/ },
  );
});

t.test("run from another folder, the config's folder holding the token: where to run from, not a new token", async (t) => {
  const pki = await makePki('mesh.local');
  const parent = t.testdir({ 'bundle.pem': pki.bundlePem });
  const site = join(parent, 'site');
  await mkdir(join(site, 'certs'), { recursive: true });
  await writeFile(join(site, 'certs', 'orders.token'), 'a-token-never-sent\n');
  await writeFile(join(site, 'orders.yaml'), `${sidecarYaml(join(parent, 'bundle.pem'), 'certs/orders.token', join(parent, 'identity')).replace('"https://127.0.0.1:8443"', '"https://127.0.0.1:1"')}admin: {listen: "127.0.0.1:0"}\n`);
  const proc = startMeshcar(['run', '--config', 'site/orders.yaml'], { cwd: parent });
  t.equal(await proc.exited(), 1);
  t.equal(proc.stderr.length, 1, proc.stderr.join('\n'));
  t.match(proc.stderr[0], `the config's folder holds it (${join(site, 'certs', 'orders.token')}): run meshcar from ${site}`);
  t.notMatch(proc.stderr[0], /write one with/, 'no advice to write a token that exists');
});
