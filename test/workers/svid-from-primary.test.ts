// The SVID a worker is handed by the primary, as checkFromPrimary judges it: one the primary
// keeps serving past its end (the renewal failing, or identity.files whose intermediate ended
// before the leaf) is taken as of its last valid second, so a worker restarted meanwhile starts
// on what every other worker serves instead of crash-looping. Real certificates from the test PKI.

import t from 'tap';
import { makePki } from '../helpers/pki.js';
import { checkFromPrimary } from '../../src/workers/worker.js';

const ID = 'spiffe://mesh.test/svc/orders';

t.test('an SVID past its end is taken as of its last valid second; anything else wrong is still refused', async (t) => {
  const pki = await makePki('mesh.test');
  // issued 30 s ago for 10 s (the issuer is backdated a minute)
  const expiredLeaf = await pki.issue(ID, { lifetimeMs: 10_000, now: new Date(Date.now() - 30_000) });
  t.equal(checkFromPrimary(expiredLeaf, ID).serialHex, expiredLeaf.serialHex, 'a leaf that has expired');

  // a 1 h leaf under an intermediate that ended 30 s ago (issued a minute ago for 30 s)
  const endedIssuer = await pki.issueUnderShortIssuer(ID, -30_000);
  const svid = checkFromPrimary(endedIssuer, ID);
  t.equal(svid.serialHex, endedIssuer.serialHex, 'a valid leaf whose intermediate has ended');
  t.equal(svid.notAfter.getTime(), endedIssuer.issuerNotAfterMs, 'its end is the intermediate\'s');

  const other = await pki.issue(ID);
  t.throws(() => checkFromPrimary({ ...endedIssuer, privateKeyPem: other.privateKeyPem }, ID), { code: 'identity_invalid', message: /private key does not match/ }, 'a key that does not match is refused');
  t.throws(() => checkFromPrimary(endedIssuer, 'spiffe://mesh.test/svc/payments'), { code: 'identity_invalid', message: /expected spiffe:\/\/mesh\.test\/svc\/payments/ }, 'another workload\'s SVID is refused');
});
