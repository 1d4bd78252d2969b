// A CA folder whose issuer.crt or root.crt has a validity date this host cannot read (OpenSSL
// prints "Bad time value"; re-signed with the folder's own root key, so it still chains): one
// line naming the file and the date, exit 1, from ca status and ca issue. ca status threw
// RangeError: Invalid time value (a stack trace, exit 70), and ca issue signed leaves under it.

import t from 'tap';
import { createPrivateKey } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/ca.js';
import { MONTH_13, redated } from '../helpers/odd-dates.js';

t.test('issuer.crt or root.crt with an unreadable date: one line naming it, exit 1', async (t) => {
  const dir = t.testdir();
  t.equal((await runCli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'])).code, 0, 'ca init');
  const rootKey = createPrivateKey(await readFile(join(dir, 'ca', 'root.key'), 'utf8'));
  for (const file of ['issuer.crt', 'root.crt']) {
    const ca = join(dir, file.replace('.', '-'));
    await cp(join(dir, 'ca'), ca, { recursive: true });
    await writeFile(join(ca, file), await redated(await readFile(join(ca, file), 'utf8'), rootKey, { notAfter: MONTH_13 }));
    for (const command of [['ca', 'status'], ['ca', 'issue', '--service', 'a', '--out', join(dir, `${file}-out`)]]) {
      const result = await runCli([...command, '--dir', ca]);
      const what = `${command.slice(0, 2).join(' ')} on ${file}`;
      t.equal(result.code, 1, `${what}: exit 1 (${result.stderr})`);
      t.ok(result.stderr.includes(`the certificate at ${join(ca, file)} has a validity date this host cannot read: its notAfter is "Bad time value"; the CA cannot use it`), `${what}: names the file and the date (${result.stderr})`);
      t.notMatch(result.stderr, /RangeError|\n\s+at /, `${what}: no stack trace`);
    }
  }
});
