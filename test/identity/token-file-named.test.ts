// A join token the CA refuses at a first start (another CA's, expired, single-use and spent, or another service's): the
// sidecar's one stderr line names the file identity.ca.token gives and how to replace it, where
// it said only "the CA at URL refused (401 bad_token): the join token was not signed by this
// CA", leaving a newcomer with several token files to guess which one was read.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { caToken } from '../../src/ca/commands.js';
import { makeCaDir, startTestCa } from '../helpers/ca.js';
import { startMeshcar } from '../helpers/process.js';

/** A first start of an `orders` sidecar whose identity.ca.token file holds `token`, against `ca`. */
async function firstStartOfOrders(t: { testdir(): string }, ca: { dir: string; server: { url: string } }, token: string) {
  const work = t.testdir();
  const tokenFile = join(work, 'orders.token');
  await writeFile(tokenFile, token, { mode: 0o600 });
  await writeFile(
    join(work, 'orders.yaml'),
    `service: orders\ntrustDomain: mesh.local\nidentity:\n  ca: {url: "${ca.server.url}", bundle: ${join(ca.dir, 'bundle.pem')}, token: ${tokenFile}}\n  dir: ${join(work, 'identity')}\n` +
      'inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n',
  );
  return { proc: startMeshcar(['run', '--config', join(work, 'orders.yaml')]), tokenFile };
}

t.test("another CA's token: the line names identity.ca.token's file and the command that makes a new one", async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const other = await makeCaDir();
  const { proc, tokenFile } = await firstStartOfOrders(t, ca, await caToken(other, 'orders', 3_600_000, false));
  t.equal(await proc.exited(), 1);
  t.equal(proc.stderr.length, 1, proc.stderr.join('\n'));
  t.match(proc.stderr[0], /^meshcar: the CA at https:\/\/127\.0\.0\.1:\d+ refused \(401 bad_token\): /);
  t.match(proc.stderr[0], `; the token is identity.ca.token's ${tokenFile}: write a new one there with the CA that serves ${ca.server.url} (meshcar ca token --dir CA_DIR --service orders --out ${tokenFile})`);
});

t.test("a token for another service: the 403 identity_not_allowed line names the file and the command too", async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  // billing's token in orders' file: the mix-up this refusal means at a first start
  const { proc, tokenFile } = await firstStartOfOrders(t, ca, await caToken(ca.dir, 'billing', 3_600_000, false));
  t.equal(await proc.exited(), 1);
  t.equal(proc.stderr.length, 1, proc.stderr.join('\n'));
  t.match(proc.stderr[0], /^meshcar: the CA at https:\/\/127\.0\.0\.1:\d+ refused \(403 identity_not_allowed\): the CSR asks for "spiffe:\/\/mesh\.local\/svc\/orders" but the join token grants spiffe:\/\/mesh\.local\/svc\/billing/);
  t.match(proc.stderr[0], `; the token is identity.ca.token's ${tokenFile}: write a new one there with the CA that serves ${ca.server.url} (meshcar ca token --dir CA_DIR --service orders --out ${tokenFile})`);
});
