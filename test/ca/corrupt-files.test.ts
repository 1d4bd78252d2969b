// A CA folder file that holds something else than it should (a token written over token.key,
// a truncated root.key, an emptied bundle.pem) is one line naming that file, exit 1, from
// every command that reads it: Node's decoder error was a stack trace and exit 70 (root add,
// rotate-issuer, token), or a line naming no file or the wrong one. The token keys' way out,
// `ca rotate-token-key`, works on the broken keys it is named for (it refused them too). What
// a refusal quotes (a JSON file's newlines, a path's ESC or CR) is escaped: one line, inert.

import t from 'tap';
import { execFile } from 'node:child_process';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['dist/cli.js', ...args], (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Garbage over one file, the commands that read it, and what their line says. */
const CASES: Array<[file: string, commands: string[][], says: (ca: string) => string]> = [
  ['root.key', [['ca', 'root', 'add'], ['ca', 'rotate-issuer']], (ca) => `${ca}/root.key is not a PEM private key (`],
  ['root.crt', [['ca', 'status'], ['ca', 'token', '--service', 'a'], ['ca', 'root', 'add'], ['ca', 'rotate-issuer']], (ca) => `${ca}/root.crt is not a PEM certificate (`],
  ['issuer.key', [['ca', 'status'], ['ca', 'issue', '--service', 'a', '--out', 'OUT']], (ca) => `${ca}/issuer.key is not a PEM private key (`],
  ['issuer.crt', [['ca', 'status'], ['ca', 'rotate-issuer']], (ca) => `${ca}/issuer.crt is not a PEM certificate (`],
  ['bundle.pem', [['ca', 'status']], (ca) => `${ca}/bundle.pem holds no PEM certificate`],
  ['token.key', [['ca', 'status'], ['ca', 'token', '--service', 'a']], (ca) => `the token keys in ${ca} cannot be read (token.key is not a PEM private key); "meshcar ca rotate-token-key --dir ${ca}" makes a new one`],
  ['token-keys.json', [['ca', 'token', '--service', 'a']], (ca) => `the token keys in ${ca} cannot be read (Unexpected token`],
];

t.test('a CA file that holds garbage: one line naming it, exit 1', async (t) => {
  const dir = t.testdir();
  // one CA, copied for each file: an init per case made the file slow on a busy machine
  t.equal((await cli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'])).code, 0);
  await Promise.all(
    CASES.map(async ([file]) => {
      const ca = join(dir, file.replace('.', '-'));
      await cp(join(dir, 'ca'), ca, { recursive: true });
      await writeFile(join(ca, file), 'garbage\nover two lines\n');
    }),
  );
  const runs = CASES.flatMap(([file, commands, says]) => {
    const ca = join(dir, file.replace('.', '-'));
    return commands.map((command) => ({ name: `${file}: ${command.join(' ')}`, says: says(ca), args: [...command, '--dir', ca].map((a) => (a === 'OUT' ? join(dir, 'out') : a)) }));
  });
  const results = await Promise.all(runs.map((run) => cli(run.args)));
  runs.forEach((run, i) => {
    const result = results[i]!;
    t.equal(result.code, 1, `${run.name}: exit 1 (${result.stderr})`);
    t.equal(result.stderr.split('\n').length, 2, `${run.name}: one line: ${result.stderr}`);
    t.ok(result.stderr.startsWith(`meshcar: ${run.says}`), `${run.name}: ${result.stderr}`);
  });
});

t.test('ca rotate-token-key mends the token keys its refusal names', async (t) => {
  const dir = t.testdir();
  t.equal((await cli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'])).code, 0);
  const cas = ['token.key', 'token-keys.json'].map((file) => [file, join(dir, file.replace('.', '-'))] as const);
  for (const [file, ca] of cas) {
    await cp(join(dir, 'ca'), ca, { recursive: true });
    await writeFile(join(ca, file), 'garbage\n');
    const rotated = await cli(['ca', 'rotate-token-key', '--dir', ca]);
    t.equal(rotated.code, 0, `${file}: ${rotated.stderr}`);
    t.match(rotated.stdout, /^new token key \S+ signs tokens/);
    const token = await cli(['ca', 'token', '--dir', ca, '--service', 'orders']);
    t.equal(token.code, 0, `${file}: ${token.stderr}`);
    t.match(token.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  }
});

t.test('what a refusal quotes stays on its line: a newline in the file, ESC in the path', async (t) => {
  const dir = t.testdir();
  t.equal((await cli(['ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'mesh.local'])).code, 0);
  await cp(join(dir, 'ca'), join(dir, 'state'), { recursive: true });
  await writeFile(join(dir, 'state', 'state.json'), 'garbage\nline two\n');
  await cp(join(dir, 'ca'), join(dir, 'ledger'), { recursive: true });
  await writeFile(join(dir, 'ledger', 'used-tokens.json'), 'garbage\nline two\n');
  const [state, ledger, escaped] = await Promise.all([
    cli(['ca', 'status', '--dir', join(dir, 'state')]),
    cli(['ca', 'issue', '--dir', join(dir, 'ledger'), '--service', 'a', '--out', join(dir, 'out')]),
    cli(['ca', 'status', '--dir', join(dir, '\u001b[2Jx\ry')]),
  ]);
  for (const [result, says] of [
    [state, `${join(dir, 'state', 'state.json')} is not JSON (Unexpected token 'g', "garbage\\nline two\\n" is not valid JSON)`],
    [ledger, `${join(dir, 'ledger', 'used-tokens.json')} cannot be read (Unexpected token 'g', "garbage\\nline two\\n" is not valid JSON)`],
    [escaped, `${join(dir, '\\u001b[2Jx\\ry')}: does not exist`],
  ] as const) {
    t.equal(result.code, 1, result.stderr);
    t.equal(result.stderr.split('\n').length, 2, `one line: ${result.stderr}`);
    t.ok(result.stderr.startsWith(`meshcar: ${says}`), result.stderr);
    t.notMatch(result.stderr, /[\u001b\r]/, 'no raw ESC or CR');
  }
});

t.test('a state.json edited by hand: one line naming the field, exit 1, not a stack trace', async (t) => {
  const dir = t.testdir();
  const ca = join(dir, 'ca');
  t.equal((await cli(['ca', 'init', '--dir', ca, '--trust-domain', 'mesh.local'])).code, 0);
  const edits: Array<[state: unknown, says: string]> = [
    [{ generation: 3, rootRotation: { step: 'added' } }, 'its rootRotation.addedAt is not a time'],
    [{ generation: 3, rootRotation: { step: 'half', addedAt: '2026-12-01T00:00:00.000Z' } }, 'its rootRotation.step is neither "added" nor "activated"'],
    [{ generation: 3, rootRotation: { step: 'activated', addedAt: '2026-12-01T00:00:00.000Z', activatedAt: 'soon' } }, 'its rootRotation.activatedAt is not a time'],
    [{ generation: 3, issuerRotatedAt: 17 }, 'its issuerRotatedAt is not a time'],
  ];
  for (const [state, says] of edits) {
    await writeFile(join(ca, 'state.json'), JSON.stringify(state));
    for (const command of [['ca', 'status'], ['ca', 'root', 'add']]) {
      const result = await cli([...command, '--dir', ca]);
      t.equal(result.code, 1, `${command.join(' ')}: exit 1 (${result.stderr})`);
      t.equal(result.stderr, `meshcar: ${join(ca, 'state.json')} does not hold the CA's state: ${says}; it records the CA's rotation state: restore it from a backup\n`, `${command.join(' ')}: ${says}`);
    }
  }
});
