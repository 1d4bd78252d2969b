// What a requester sends is quoted in a refusal (its answer and the CA's audit line) only up to
// a bound: a `ttl`, a CSR's signature algorithm and a Content-Type of tens of kilobytes used to
// come back whole, 15-80 KB of log per refused request, at the rate limit's pace.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { caToken } from '../../src/ca/commands.js';
import { callCa, startTestCa } from '../helpers/ca.js';
import { hostileCsr, uriName } from '../helpers/hostile-csr.js';

const ANSWER_LIMIT = 1_000;
const AUDIT_LIMIT = 2_000;

t.test('refusals quote at most a few hundred characters of what was sent', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = readFileSync(`${ca.dir}/bundle.pem`, 'utf8');
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  const post = (body: string, headers: Record<string, string> = {}) => callCa(ca.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, body, headers: { authorization: `Bearer ${token}`, ...headers } });
  const lastAudit = () => JSON.stringify(ca.logLines.filter((line) => line.component === 'ca-audit').at(-1) ?? {});

  const cases: Array<[string, () => Promise<{ status: number; text: string }>, RegExp]> = [
    ['a 60,000-character ttl', () => post(JSON.stringify({ csr: 'x', ttl: 'A'.repeat(60_000) })), /ttl/],
    [
      'a 40,000-character signature algorithm',
      () => post(JSON.stringify({ csr: hostileCsr({ sans: [uriName('spiffe://mesh.local/svc/orders')], signatureOid: `1.2.${Array(20_000).fill('1').join('.')}` }) })),
      /signature algorithm 1\.2\.1\.1/,
    ],
    ['a 15,000-character Content-Type', () => post(JSON.stringify({ csr: 'x' }), { 'content-type': `text/${'a'.repeat(15_000)}` }), /content-type must be/],
  ];
  for (const [what, send, names] of cases) {
    const answer = await send();
    t.equal(answer.status, 400, `${what}: refused`);
    t.match(answer.text, names, `${what}: the answer says what was wrong`);
    t.match(answer.text, /characters\)/, `${what}: and how long the quoted text was`);
    t.ok(answer.text.length < ANSWER_LIMIT, `${what}: answer of ${answer.text.length} bytes`);
    t.ok(lastAudit().length < AUDIT_LIMIT, `${what}: audit line of ${lastAudit().length} bytes`);
  }
});

// a ttl that is not a string was quoted with JSON.stringify, which overflowed the stack on a
// deeply nested array (20,000 levels fit the body limit): 500 internal and an error line with a
// stack trace, for anyone with a token
t.test('a ttl that is not a string is named by its type: 400, whatever its depth', async (t) => {
  const ca = await startTestCa();
  t.teardown(() => ca.close());
  const bundle = readFileSync(`${ca.dir}/bundle.pem`, 'utf8');
  const token = await caToken(ca.dir, 'orders', 3_600_000, false);
  const post = (body: string) => callCa(ca.server.url, { method: 'POST', path: '/v1/sign', ca: bundle, body, headers: { authorization: `Bearer ${token}` } });
  const nested = await post(`{"csr":"x","ttl":${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
  t.equal(nested.status, 400, `400, not ${nested.status}`);
  t.match(JSON.parse(nested.text), { error: 'bad_request', message: /"ttl" must be a duration .*got an array/ });
  t.match(JSON.parse((await post('{"csr":"x","ttl":{"a":1}}')).text), { message: /got an object/ });
  t.match(JSON.parse((await post('{"csr":"x","ttl":"nonsense"}')).text), { message: /got "nonsense"/ }, 'a string is quoted');
  t.notOk(ca.logLines.some((line) => line.msg === 'signing failed'), 'no error line');
});
