// The README's whole configuration examples (a ```yaml block that starts with `service:` or
// `trustDomain:`: the CA's and the sidecar's reference) pass `meshcar check` as written, in a
// folder laid out as the README's set-up leaves the meshcar folder: certs/ca from ca init,
// certs/orders.token from ca token, config/ with the specs the repository ships. A reader copies
// them into a file; one that check refuses (a file it names that nothing makes) is a bug.

import t from 'tap';
import { execFile } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');

function meshcar(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], { cwd, timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr })));
}

t.test("the README's configuration examples pass meshcar check as written", async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const examples = [...readme.matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m) => m[1] as string).filter((text) => /^(service|trustDomain):/.test(text));
  t.ok(examples.length >= 2, `the CA's and the sidecar's reference examples are found (${examples.length})`);

  const cwd = t.testdir();
  t.equal((await meshcar(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'mesh.local'], cwd)).code, 0, 'make ca, as the README runs it');
  t.equal((await meshcar(['ca', 'token', '--dir', 'certs/ca', '--service', 'orders', '--out', 'certs/orders.token'], cwd)).code, 0, 'make token SERVICE=orders');
  await cp(join(ROOT, 'config'), join(cwd, 'config'), { recursive: true });

  for (const [i, text] of examples.entries()) {
    const file = `example-${i + 1}.yaml`;
    await writeFile(join(cwd, file), text);
    const check = await meshcar(['check', '--config', file], cwd);
    t.equal(check.code, 0, `example ${i + 1} (${text.split('\n')[0]}): ${check.out.trim()}`);
  }
});
