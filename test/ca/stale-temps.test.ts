// A CA step killed between writing a file's temp copy and renaming it in (SIGKILL, power loss)
// left `.NAME.<hex>.tmp` in the CA folder for good: for `root add` or `rotate-issuer`, an
// unused private key. The next step that takes the folder's lock removes those older than 10
// minutes; a fresh one (a write in flight in another process) and files that are not such
// temps are left alone.

import t from 'tap';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/ca.js';

t.test('the next locked step removes temp files a killed step left, and only those', async (t) => {
  const ca = join(t.testdir(), 'ca');
  t.equal((await runCli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const stale = ['.root-pending.key.0123456789ab.tmp', '.issuer.key.a1b2c3d4e5f6.tmp'];
  const fresh = '.bundle.pem.fedcba987654.tmp';
  const notOurs = ['.notes.tmp', 'root-pending.key.0123456789ab.tmp', '.x.0123456789ab.tmp.bak'];
  for (const name of [...stale, fresh, ...notOurs]) await writeFile(join(ca, name), '-----BEGIN PRIVATE KEY-----\n', { mode: 0o600 });
  const hourAgo = new Date(Date.now() - 3_600_000);
  for (const name of [...stale, ...notOurs]) await utimes(join(ca, name), hourAgo, hourAgo);

  const step = await runCli(['ca', 'rotate-issuer', '--dir', ca]);
  t.equal(step.code, 0, step.stderr);
  const left = await readdir(ca);
  for (const name of stale) t.notOk(left.includes(name), `removed: ${name}`);
  t.ok(left.includes(fresh), 'a temp file younger than 10 minutes is left (a write may be under way)');
  for (const name of notOurs) t.ok(left.includes(name), `not a temp file of ours, left: ${name}`);
});
