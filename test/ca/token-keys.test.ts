// token-keys.json holding a public key that does not parse (hand-edited, or carried by an older
// rotate-token-key): every command that reads the token keys (ca token, status, serve) fails in
// one line naming the file, the key and the way out, `ca rotate-token-key`; that rotation then
// mends the folder, dropping the unreadable key (its kid retired) with a warning line. It was
// Node's decoder error from the TokenKeys constructor (a stack trace, exit 70), and the rotation
// itself crashed after writing the bad key as "previous", leaving every command at exit 70.

import t from 'tap';
import { execFile } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

function cli(args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number | null }).code ?? (err as { signal?: string }).signal ?? -1) : 0, stdout, stderr }),
    );
  });
}

interface KeyList {
  keys: Array<{ kid: string; state: string; createdAt: string; publicKeyPem: string }>;
  retired: string[];
}
const JUNK = { kid: 'a', createdAt: '2026-01-01T00:00:00Z', publicKeyPem: 'junk' };
const readList = async (ca: string) => JSON.parse(await readFile(join(ca, 'token-keys.json'), 'utf8')) as KeyList;

/** Each command that reads the token keys: exit 1 and one line naming the file, the key and the fix. */
async function refusedByAll(t: Tap.Test, ca: string): Promise<void> {
  const config = join(ca, '..', `${ca.split('/').pop()}.yaml`);
  await writeFile(config, `trustDomain: mesh.local\ndir: ${ca}\nlisten: 127.0.0.1:0\n`);
  for (const args of [['ca', 'token', '--dir', ca, '--service', 'x'], ['ca', 'status', '--dir', ca], ['ca', 'serve', '--config', config]]) {
    const run = await cli(args);
    t.equal(run.code, 1, `${args[1]}: exit 1 (${run.stderr})`);
    t.match(run.stderr, /^meshcar: the token keys in \S+ cannot be read \(token-keys\.json: the publicKeyPem of key "a" is not a PEM public key\); "meshcar ca rotate-token-key --dir \S+" makes a new one/, args[1]);
    t.notMatch(run.stderr, /DECODER|\n\s+at /, `${args[1]}: no stack trace`);
  }
}

t.test('an unreadable public key in token-keys.json: one line from every command, and the rotation it names mends it', async (t) => {
  const dir = t.testdir();
  const base = join(dir, 'base');
  t.equal((await cli(['ca', 'init', '--dir', base, '--trust-domain', 'mesh.local'])).code, 0);
  const fresh = await readList(base);

  // the review's folder: the only key listed is junk (token.key is not it)
  const onlyJunk = join(dir, 'only-junk');
  await cp(base, onlyJunk, { recursive: true });
  await writeFile(join(onlyJunk, 'token-keys.json'), JSON.stringify({ keys: [{ ...JUNK, state: 'current' }], retired: [] }));
  // what the old rotate-token-key left behind: a good current key, the junk as previous
  const junkPrevious = join(dir, 'junk-previous');
  await cp(base, junkPrevious, { recursive: true });
  await writeFile(join(junkPrevious, 'token-keys.json'), JSON.stringify({ keys: [...fresh.keys, { ...JUNK, state: 'previous' }], retired: [] }));

  for (const ca of [onlyJunk, junkPrevious]) {
    const name = ca.split('/').pop() as string;
    await t.test(name, async (t) => {
      await refusedByAll(t, ca);
      const rotated = await cli(['ca', 'rotate-token-key', '--dir', ca]);
      t.equal(rotated.code, 0, `rotate-token-key: exit 0 (${rotated.stderr})`);
      t.match(rotated.stderr, /^meshcar: warning: \S+token-keys\.json: dropped 1 key\(s\) that could not be read rather than keep them \(the publicKeyPem of key "a" is not a PEM public key\); their kids are retired/);
      t.equal(rotated.stderr.split('\n').filter(Boolean).length, 1, 'one warning line');
      t.match(rotated.stdout, /^new token key \S+ signs tokens/);
      const list = await readList(ca);
      t.notOk(list.keys.some((k) => k.kid === 'a'), 'the junk key is not carried');
      t.ok(list.retired.includes('a'), 'its kid is retired');
      if (ca === junkPrevious) t.same(list.keys.map((k) => [k.kid, k.state]), [[list.keys[0]?.kid, 'current'], [fresh.keys[0]?.kid, 'previous']], 'the good current key became the previous one');
      for (const args of [['ca', 'token', '--dir', ca, '--service', 'x'], ['ca', 'status', '--dir', ca]]) {
        const after = await cli(args);
        t.equal(after.code, 0, `${args[1]} after the rotation: exit 0 (${after.stderr})`);
      }
    });
  }
});
