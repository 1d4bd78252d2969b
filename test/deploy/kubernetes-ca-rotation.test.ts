// What a root rotation asks of a Kubernetes install (README "Kubernetes", after the sidecar
// bullets): every pod made later starts with an empty identity volume and the trust bundle and
// join token of the ConfigMap and Secret, so those must be replaced during the rotation. Proved
// with a real CA taken through root add, activate and retire, and a sidecar started each way,
// as a new pod would be: with the install-time bundle it cannot reach the CA, with an old token
// it is refused, with the bundle taken after root add and a token made after activate it joins.

import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startTestCa } from '../helpers/ca.js';
import { startMeshcar } from '../helpers/process.js';
import { caToken } from '../../src/ca/commands.js';

const ca = await startTestCa();
const work = await mkdtemp(join(tmpdir(), 'meshcar-kube-rotation-'));
t.teardown(async () => {
  await ca.close();
  await rm(work, { recursive: true, force: true });
});

const DAY = 86_400_000;
const installBundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
const installToken = await caToken(ca.dir, 'orders', 7 * DAY, false);
const step = async (args: string[]) => {
  // activate and retire would wait a leaf lifetime each: --force, as the README allows
  const r = await runCli(['ca', 'root', ...args, '--dir', ca.dir]);
  if (r.code !== 0) throw new Error(`ca root ${args.join(' ')}: ${r.stderr}`);
};
await step(['add']);
const bundleAfterAdd = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
await step(['activate', '--force']);
const tokenAfterActivate = await caToken(ca.dir, 'orders', 7 * DAY, false);
await step(['retire', '--force']);
// as the CA is when a pod is made later: its own certificate re-issued under the new root alone
// (the running server reloads at its next request, after that request's handshake)
await ca.restart();

/** A new pod's sidecar: an empty identity folder, this bundle and token; what it logs at start. */
async function newPod(name: string, bundle: string, token: string): Promise<Record<string, unknown>> {
  const dir = join(work, name);
  await writeFile(join(work, `${name}.bundle.pem`), bundle);
  await writeFile(join(work, `${name}.token`), `${token}\n`, { mode: 0o600 });
  const config = [
    'service: orders',
    'trustDomain: mesh.local',
    'identity:',
    '  ca:',
    `    url: ${ca.server.url}`,
    `    bundle: ${join(work, `${name}.bundle.pem`)}`,
    `    token: ${join(work, `${name}.token`)}`,
    `  dir: ${join(dir, 'svid')}`,
    'inbound:',
    '  listen: 127.0.0.1:0',
    '  app: http://127.0.0.1:9',
    'admin:',
    '  listen: 127.0.0.1:0',
    '',
  ].join('\n');
  await writeFile(join(work, `${name}.yaml`), config);
  const sidecar = startMeshcar(['run', '--config', join(work, `${name}.yaml`)]);
  try {
    return await sidecar.waitFor((l) => l.msg === 'sidecar ready' || String(l.msg).startsWith('could not start'), 10_000);
  } finally {
    await sidecar.stop();
  }
}

t.test('after root retire, a new pod with the install-time ConfigMap bundle cannot reach the CA', async (t) => {
  const said = await newPod('old-bundle', installBundle, tokenAfterActivate);
  t.match(said, { code: 'ca_mismatch', msg: /does not chain to identity\.ca\.bundle/ });
});

t.test('after root retire, a new pod with a join token made before root activate is refused', async (t) => {
  const said = await newPod('old-token', bundleAfterAdd, installToken);
  t.match(said, { code: 'ca_refused', msg: /bad_token/ });
});

t.test('the bundle taken after root add and a token made after root activate: a new pod joins', async (t) => {
  const said = await newPod('replaced', bundleAfterAdd, tokenAfterActivate);
  t.equal(said.msg, 'sidecar ready');
});

t.test('the README\'s Kubernetes section says what to replace between the steps', async (t) => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## Kubernetes');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 5)).replace(/\s+/g, ' ');
  t.match(section, /after `root add`, replace the ConfigMap with the CA's `bundle\.pem`/);
  t.match(section, /after `root activate`, make a new join token per service and replace each `SERVICE-join-token` Secret/);
  t.match(section, /only then `root retire`/);
});
