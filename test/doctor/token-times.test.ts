// `meshcar doctor` on a first start (no SVID yet, so the join token is needed) whose token file
// holds exp 1e20 or -1e20: a ✗ line on the join token naming the claim, exit 1. It was a stack
// trace, "RangeError: Invalid time value", and exit 70 (new Date(exp * 1000).toISOString()).
// No CA is needed: the CA line fails too (nothing listens), the token line is what is checked.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

const tokenWith = (exp: number) =>
  [{ alg: 'ES256', typ: 'meshcar-join+jwt', kid: 'k' }, { sub: 'spiffe://mesh.local/svc/orders', iat: 1, exp, jti: 'j', single: false }]
    .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
    .concat('c2ln')
    .join('.');

function doctor(file: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, 'doctor', '--config', file, '--timeout', '1s'], { timeout: 20_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number | null }).code ?? (err as { signal?: string }).signal ?? -1) : 0, stdout, stderr }),
    ),
  );
}

t.test('a join token whose exp no date can hold: a ✗ line and exit 1, no stack trace', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'far.token': `${tokenWith(1e20)}\n`, 'neg.token': `${tokenWith(-1e20)}\n` });
  for (const [token, shown] of [['far.token', '100000000000000000000'], ['neg.token', '-100000000000000000000']] as const) {
    const file = join(dir, `${token}.yaml`);
    const ca = `  ca: {url: "https://127.0.0.1:1", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, token)}}\n  dir: ${join(dir, `${token}-identity`)}\n`;
    await writeFile(file, `service: orders\ntrustDomain: mesh.local\nidentity:\n${ca}inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n`);
    const result = await doctor(file);
    t.equal(result.code, 1, `${token}: exit 1 (${result.stderr})`);
    t.match(result.stdout, new RegExp(`^✗ join token: \\S+${token.replace('.', '\\.')}: it is not a meshcar join token: its exp claim \\(${shown}\\) is not a time: .* — fix: write a new token with meshcar ca token --dir <CA dir> --service orders`, 'm'), token);
    t.notMatch(result.stderr, /RangeError|\n\s+at /, `${token}: no stack trace`);
  }
});

t.test("another service's token in the file: the fix points elsewhere, never writing over that file", async (t) => {
  // the fix was `ca token ... --service orders --out <that file>`: the file may be billing's
  // own token, which it would take away
  const pki = await makePki('mesh.local');
  const claims = { sub: 'spiffe://mesh.local/svc/billing', iat: 1, exp: Math.floor(Date.now() / 1000) + 3600, jti: 'j', single: false };
  const token = [{ alg: 'ES256', typ: 'meshcar-join+jwt', kid: 'k' }, claims].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).concat('c2ln').join('.');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'billing.token': `${token}\n` });
  const file = join(dir, 'orders.yaml');
  const ca = `  ca: {url: "https://127.0.0.1:1", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'billing.token')}}\n  dir: ${join(dir, 'identity')}\n`;
  await writeFile(file, `service: orders\ntrustDomain: mesh.local\nidentity:\n${ca}inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n`);
  const result = await doctor(file);
  t.equal(result.code, 1);
  const line = result.stdout.split('\n').find((l) => l.startsWith('✗ join token')) ?? '';
  t.match(line, /the token is for spiffe:\/\/mesh\.local\/svc\/billing, expected spiffe:\/\/mesh\.local\/svc\/orders — fix: the file holds another service's token: point identity\.ca\.token at the token made for orders, or make one in a file of its own \(meshcar ca token --dir <CA dir> --service orders --out orders\.token\)/, line);
  t.notMatch(line, `--out ${join(dir, 'billing.token')}`, 'the fix does not write over the file');
});
