// A join token the CA refuses at a first start (another CA's, expired, single-use and spent, or another service's): the
// sidecar's one stderr line names the file identity.ca.token gives and how to replace it, where
// it said only "the CA at URL refused (401 bad_token): the join token was not signed by this
// CA", leaving a newcomer with several token files to guess which one was read.

import t from 'tap';
import { readFile, writeFile } from 'node:fs/promises';
import pino from 'pino';
import { join } from 'node:path';
import { caToken } from '../../src/ca/commands.js';
import { makeCaDir, startTestCa } from '../helpers/ca.js';
import { startMeshcar } from '../helpers/process.js';
import { CaClient } from '../../src/identity/ca-client.js';

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
  // not "write a new one there": the file may be billing's own, which that would take away
  t.match(proc.stderr[0], `; the token is identity.ca.token's ${tokenFile}, another service's: point identity.ca.token at the token made for orders, or make one in a file of its own with the CA that serves ${ca.server.url} (meshcar ca token --dir CA_DIR --service orders --out orders.token) and point identity.ca.token there`);
  t.notMatch(proc.stderr[0], `--out ${tokenFile}`, 'the fix does not write over the file');
});

t.test('a token file holding a character a header cannot carry: one line naming the file, exit 1, not a stack trace (exit 70)', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  for (const [what, text] of [
    ['a zero-width space pasted after it', `${token}\u200b\n`],
    ['two tokens, one a line', `${token}\n${token}\n`],
  ] as const) {
    const { proc, tokenFile } = await firstStartOfOrders(t, ca, text);
    t.equal(await proc.exited(), 1, `${what}: exit 1`);
    t.equal(proc.stderr.length, 1, proc.stderr.join('\n'));
    t.match(proc.stderr[0], `meshcar: identity.ca.token: the join token file ${tokenFile}: it does not hold a join token (three base64url parts joined by dots, as meshcar ca token prints)`, what);
  }
});

t.test('the CA client: a token Node refuses in a header is a refusal naming the request, never a TypeError', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const client = new CaClient({ url: ca.server.url, trustDomain: 'mesh.local', bundlePem: await readFile(join(ca.dir, 'bundle.pem'), 'utf8'), logger: pino({ level: 'silent' }) });
  const failure = await client.sign({ spiffeId: 'spiffe://mesh.local/svc/orders', auth: { token: 'a\nb' } }).then(
    () => undefined,
    (err: unknown) => err,
  );
  t.match(failure, { code: 'identity_invalid', message: /^the request to the CA at https:\/\/127\.0\.0\.1:\d+ could not be made: .*authorization/ });
});
