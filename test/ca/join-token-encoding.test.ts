// How a join token may be presented, over real HTTPS: the auth-scheme is case-insensitive
// (`bearer`, `BEARER`: RFC 9110 11.1, RFC 6750), and the token itself only in its one canonical
// base64url spelling: padding, or a last character differing only in unused bits, decodes to
// the same signature under Node's lenient decoder and is refused (bad_token).

import t from 'tap';
import { startSigningCa, callCa, type TestCa } from '../helpers/ca.js';
import { hostileCsr, uriName } from '../helpers/hostile-csr.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

let ca: TestCa;
let bundle: string;
let token: string;

t.before(async () => ({ ca, bundle, token } = await startSigningCa()));
t.teardown(() => ca.close());

async function signWith(authorization: string) {
  const res = await callCa(ca.server.url, { method: 'POST', path: '/v1/sign', body: JSON.stringify({ csr: hostileCsr({ sans: [uriName(ORDERS)] }) }), headers: { authorization }, ca: bundle });
  return { status: res.status, error: res.status === 200 ? undefined : res.json().error };
}

t.test('the auth-scheme is case-insensitive', async (t) => {
  t.same(await signWith(`Bearer ${token}`), { status: 200, error: undefined }, 'Bearer');
  t.same(await signWith(`bearer ${token}`), { status: 200, error: undefined }, 'bearer');
  t.same(await signWith(`BEARER ${token}`), { status: 200, error: undefined }, 'BEARER');
  t.same(await signWith(`Basic ${token}`), { status: 401, error: 'unauthenticated' }, 'another scheme is still refused');
});

t.test('only the canonical base64url spelling of a token is taken', async (t) => {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  // a 64-byte signature is 86 characters: the last carries 2 bits, its low 4 are unused
  const last = ALPHABET.indexOf(signature.at(-1) as string);
  const sameBytes = `${signature.slice(0, -1)}${ALPHABET[last ^ 1]}`;
  t.same(Buffer.from(sameBytes, 'base64url'), Buffer.from(signature, 'base64url'), 'the variant decodes to the same signature bytes');
  for (const [what, variant] of [
    ['padded signature', `${header}.${payload}.${signature}==`],
    ['unused bits set in the signature', `${header}.${payload}.${sameBytes}`],
    ['padded header', `${header}=.${payload}.${signature}`],
    ['signature in the standard alphabet', `${header}.${payload}.${Buffer.from(signature, 'base64url').toString('base64').replace(/=+$/, '')}`],
  ] as const) {
    // a signature with no - or _ reads the same in both alphabets: nothing to test then
    if (variant === token) continue;
    t.same(await signWith(`Bearer ${variant}`), { status: 401, error: 'bad_token' }, what);
  }
  t.same(await signWith(`Bearer ${token}`), { status: 200, error: undefined }, 'the token as issued still works');
});
