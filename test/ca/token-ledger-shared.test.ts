// Two CA servers on one CA folder (an overlapping restart, a second port, two replicas on one
// volume): a single-use join token is spent once across both, and neither forgets the tokens
// the other recorded. Each server used to keep its own copy of used-tokens.json, read at start
// and written whole at each spend, so the same token signed at both, and a spend at one erased
// the other's entries (a spent token worked again after a restart). The ledger on disk is now
// read, extended and written under the CA folder's lock at every spend.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { caServe, caToken } from '../../src/ca/commands.js';
import { buildCsr } from '../../src/pki/csr-request.js';
import { callCa, memoryLogger, startTestCa } from '../helpers/ca.js';
import { ecKeys } from '../helpers/hostile-csr.js';

t.test('a single-use token is spent once across two servers on one folder', async (t) => {
  const a = await startTestCa();
  const b = await caServe(a.config, memoryLogger([]));
  t.teardown(async () => {
    await b.close();
    await a.close();
  });
  const bundle = readFileSync(`${a.dir}/bundle.pem`, 'utf8');
  const signAt = async (url: string, token: string) => {
    const keys = ecKeys();
    const csr = await buildCsr(keys.privateKey, keys.publicKey, 'spiffe://mesh.local/svc/orders');
    return (await callCa(url, { method: 'POST', path: '/v1/sign', ca: bundle, body: JSON.stringify({ csr }), headers: { authorization: `Bearer ${token}` } })).status;
  };
  const ledger = () => Object.keys(JSON.parse(readFileSync(`${a.dir}/used-tokens.json`, 'utf8')) as Record<string, number>).length;

  const t1 = await caToken(a.dir, 'orders', 3_600_000, true);
  t.equal(await signAt(a.server.url, t1), 200, 'spent at the first server');
  t.equal(await signAt(b.url, t1), 401, 'refused at the second');
  t.equal(await signAt(a.server.url, t1), 401, 'and at the first again');

  const t2 = await caToken(a.dir, 'orders', 3_600_000, true);
  const t3 = await caToken(a.dir, 'orders', 3_600_000, true);
  t.equal(await signAt(b.url, t2), 200, 'another spent at the second server');
  t.equal(await signAt(a.server.url, t3), 200, 'a third at the first');
  t.equal(ledger(), 3, 'the ledger on disk holds all three');
  t.equal(await signAt(a.server.url, t2), 401, "the first refuses the second's token");

  // both at once, the same token: one signs
  const t4 = await caToken(a.dir, 'orders', 3_600_000, true);
  const both = await Promise.all([signAt(a.server.url, t4), signAt(b.url, t4), signAt(a.server.url, t4), signAt(b.url, t4)]);
  t.same(both.filter((s) => s === 200).length, 1, `one of four concurrent uses signs (${both.join(', ')})`);

  await a.restart();
  t.equal(await signAt(a.server.url, t2), 401, 'after a restart, a token the other server spent is still spent');
});
