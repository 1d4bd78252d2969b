// readTokenClaims (what check and doctor read of a join token, unverified): a token whose exp,
// iat or nbf is not a whole number of seconds from 1970 to the year 9999 is refused where it is
// parsed, with one line naming the claim; exp 1e20 or -1e20 used to pass as a number and make
// doctor throw "RangeError: Invalid time value" (exit 70). `meshcar check` refuses it too.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { readTokenClaims } from '../../src/identity/token-claims.js';

const SUB = 'spiffe://mesh.local/svc/orders';
const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/** A join token's shape (unsigned: only the CA checks signatures) with these claims. */
const tokenWith = (claims: Record<string, unknown>) =>
  [{ alg: 'ES256', typ: 'meshcar-join+jwt', kid: 'k' }, { sub: SUB, iat: 1, jti: 'j', single: false, ...claims }]
    .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
    .concat('c2ln')
    .join('.');

t.test('times a date can hold are read; others are refused, naming the claim', async (t) => {
  t.match(readTokenClaims(tokenWith({ exp: 4_000_000_000 })), { sub: SUB, expMs: 4_000_000_000_000 });
  t.match(readTokenClaims(tokenWith({ exp: 0 })), { expMs: 0 }, 'an expired token is still a token: doctor says it expired');
  t.match(readTokenClaims(tokenWith({ exp: 253_402_300_799, nbf: 5 })), { expMs: 253_402_300_799_000 }, 'the last second of 9999');
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ exp: 1e20 }, /^it is not a meshcar join token: its exp claim \(100000000000000000000\) is not a time: whole seconds since 1970 \(JWT NumericDate\), up to the year 9999$/],
    [{ exp: -1e20 }, /its exp claim \(-100000000000000000000\) is not a time/],
    [{ exp: 253_402_300_800 }, /its exp claim \(253402300800\) is not a time/],
    [{ exp: 1_700_000_000_000 }, /its exp claim \(1700000000000\) is not a time: whole seconds/, 'milliseconds, not seconds'],
    [{ exp: 1.5 }, /its exp claim \(1\.5\) is not a time/],
    [{ exp: -1 }, /its exp claim \(-1\) is not a time/],
    [{ exp: 4_000_000_000, iat: 1e300 }, /its iat claim \(1e\+300\) is not a time/],
    [{ exp: 4_000_000_000, iat: 'now' }, /its iat claim \(a string\) is not a time/],
    [{ exp: 4_000_000_000, nbf: -1e20 }, /its nbf claim \(-100000000000000000000\) is not a time/],
  ];
  for (const [claims, line] of refused) {
    const result = readTokenClaims(tokenWith(claims));
    t.type(result, 'string', JSON.stringify(claims));
    t.match(result, line, JSON.stringify(claims));
    t.notMatch(result, /\n/, 'one line');
  }
});

t.test('meshcar check refuses a token whose exp is out of range, at identity.ca.token', async (t) => {
  const pki = await makePki('mesh.local');
  const dir = t.testdir({ 'bundle.pem': pki.bundlePem, 'far.token': `${tokenWith({ exp: 1e20 })}\n` });
  const file = join(dir, 'orders.yaml');
  const ca = `  ca: {url: "https://127.0.0.1:8443", bundle: ${join(dir, 'bundle.pem')}, token: ${join(dir, 'far.token')}}\n  dir: ${join(dir, 'identity')}\n`;
  await writeFile(file, `service: orders\ntrustDomain: mesh.local\nidentity:\n${ca}inbound: {listen: "127.0.0.1:0", app: "http://127.0.0.1:8080"}\n`);
  const cli = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [CLI, 'check', '--config', file], (err, _stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stderr })),
  );
  t.equal(cli.code, 1, 'exit 1: it said "valid sidecar configuration" before');
  t.match(cli.stderr, /orders\.yaml:4:\d+: identity\.ca\.token: .*far\.token: it is not a meshcar join token: its exp claim \(100000000000000000000\) is not a time/);
  t.notMatch(cli.stderr, /\n\s+at /, 'no stack trace');
});
