// chainsToRoots over certificates a peer chose: a genuine path (leaf, issuer, root; a cross
// certificate to another root) is found in a few signature checks, and certificates that all
// sign one another, a look-alike of the real issuer, or more of them than a path can hold never
// cost more than MAX_SIGNATURE_CHECKS (the search over every path made thousands: a review held
// an inbound's event loop 13 s with 16 connections of them). Certificates from the test CA and
// of a peer's own making (src/pki/certificate.ts), read by node:crypto.

import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { issueCrossCertificate, issuerName } from '../../src/ca/x509-profile.js';
import { buildCertificate } from '../../src/pki/certificate.js';
import { MAX_CANDIDATES, MAX_SIGNATURE_CHECKS, chainsToRoots, issuerIndex, nameKey } from '../../src/pki/chain-to-roots.js';
import { makePki } from '../helpers/pki.js';
import { redated } from '../helpers/odd-dates.js';
import { madeAuthority, madeKey } from '../helpers/made-certs.js';

const TD = 'mesh.test';
const DAY_MS = 86_400_000;
const x509 = (pem: string) => new X509Certificate(pem);

t.test('genuine paths, and what peers may add to them', async (t) => {
  const a = await makePki(TD);
  const b = await makePki(TD);
  const leaf = x509((await a.issue(`spiffe://${TD}/svc/frontend`)).certificatePem);
  const issuerA = x509(a.issuerPem);
  const rootA = x509(a.rootPem);
  const rootB = x509(b.rootPem);

  const spent = { checks: 0 };
  t.ok(chainsToRoots(leaf, [issuerA], [rootA], Date.now(), spent), 'leaf, issuer, root');
  t.ok(spent.checks <= 2, `in ${spent.checks} signature checks`);
  t.notOk(chainsToRoots(leaf, [issuerA], [rootB]), 'not to a root that signed none of it');
  t.notOk(chainsToRoots(leaf, [], [rootA]), 'nor without its issuer');

  // a leaf of B with a cross certificate (B's key signed by A): it reaches A too
  const bLeaf = x509((await b.issue(`spiffe://${TD}/svc/reports`)).certificatePem);
  const cross = x509((await issueCrossCertificate(a.root, new Date(Date.now() + DAY_MS), b.root.spki, TD)).pem);
  const crossSpent = { checks: 0 };
  t.ok(chainsToRoots(bLeaf, [x509(b.issuerPem), cross], [rootA], Date.now(), crossSpent), 'leaf of B, issuer of B, cross certificate, root A');
  t.ok(crossSpent.checks <= 4, `in ${crossSpent.checks} signature checks`);

  // a peer's own key signs every certificate it makes
  const own = await madeKey();
  const signingKey = own.signingKey;
  const made = { organization: 'planted', commonName: 'loop' };
  const loop = async () => x509(await madeAuthority({ subject: made, issuer: made, spki: own.spki, signingKey }));
  const loops: X509Certificate[] = [];
  for (let i = 0; i < 9; i++) loops.push(await loop());
  // the real issuer's name, key and key identifier, issued by `made`, still valid: the leaf verifies under it
  const lookalike = async () => x509(await madeAuthority({ subject: issuerName(TD), issuer: made, spki: a.issuer.spki, signingKey, keyIdOf: a.issuer.spki }));

  // a leaf of the peer's own loop: nothing reaches a root, and every one signs every other
  const loopLeaf = loops[0]!;
  const loopSpent = { checks: 0 };
  t.notOk(chainsToRoots(loopLeaf, loops.slice(1), [rootA], Date.now(), loopSpent), 'a loop of its own certificates reaches no root');
  t.ok(loopSpent.checks <= loops.length, `and each is checked as a link once (${loopSpent.checks} signature checks; every path through 8 of them: thousands)`);

  // the genuine leaf with look-alikes and loops listed before its real issuer
  const crowd = [await lookalike(), ...loops];
  const crowdSpent = { checks: 0 };
  t.ok(chainsToRoots(leaf, [...crowd, issuerA], [rootA], Date.now(), crowdSpent), 'the genuine path is still found behind a look-alike and a loop');
  t.ok(crowdSpent.checks <= MAX_SIGNATURE_CHECKS, `within the bound (${crowdSpent.checks})`);

  // more look-alikes than the bound before the real issuer: the search gives up (the peer that
  // sent them is cut; a caller's own certificates are listed before any other's)
  const many: X509Certificate[] = [];
  for (let i = 0; i <= MAX_SIGNATURE_CHECKS; i++) many.push(await lookalike());
  const manySpent = { checks: 0 };
  t.notOk(chainsToRoots(leaf, [...many, issuerA], [rootA], Date.now(), manySpent), 'past the bound, no path');
  t.equal(manySpent.checks, MAX_SIGNATURE_CHECKS, 'having spent exactly the bound');
  t.ok(chainsToRoots(leaf, [issuerA, ...many], [rootA]), 'the same certificates with the real issuer first: found at once');

  // a shared pool (other callers' certificates, for a resumed session's bare leaf) crowded with
  // the issuer's name under other key identifiers: each costs a name match, no signature, and
  // the search looks at MAX_CANDIDATES of them at most
  const other = await madeKey();
  const namesake = async () => x509(await madeAuthority({ subject: issuerName(TD), issuer: made, spki: other.spki, signingKey, keyIdOf: other.spki }));
  const namesakes: X509Certificate[] = [];
  for (let i = 0; i <= MAX_CANDIDATES; i++) namesakes.push(await namesake());
  const crowdedSpent = { checks: 0 };
  t.notOk(chainsToRoots(leaf, [], [rootA], Date.now(), crowdedSpent, issuerIndex([...namesakes, issuerA])), `a pool with more than ${MAX_CANDIDATES} namesakes before the issuer: given up`);
  t.equal(crowdedSpent.checks, 0, 'having checked no signature');
  t.ok(chainsToRoots(leaf, [], [rootA], Date.now(), { checks: 0 }, issuerIndex([issuerA, ...namesakes])), 'the issuer first in the pool: found');
  t.ok(chainsToRoots(leaf, [issuerA], [rootA], Date.now(), { checks: 0 }, issuerIndex(namesakes)), "the leaf's own certificates are tried before the pool");

  // an authority outside its dates was used by no handshake (OpenSSL refuses it): not a link
  const lapsed = x509(await madeAuthority({ subject: issuerName(TD), issuer: made, spki: a.issuer.spki, signingKey, notBefore: new Date(Date.now() - 10 * DAY_MS), notAfter: new Date(Date.now() - 5 * DAY_MS) }));
  const lapsedSpent = { checks: 0 };
  chainsToRoots(leaf, [lapsed], [rootA], Date.now(), lapsedSpent);
  t.equal(lapsedSpent.checks, 0, 'an expired authority is not even checked');
});

t.test('names and dates as OpenSSL reads them', async (t) => {
  const a = await makePki(TD);
  const rootA = x509(a.rootPem);
  // an issuer named 'Issuer CA', and a leaf whose issuer field spells it 'issuer  ca': OpenSSL
  // compares names without case or runs of spaces (RFC 5280 §7.1) and verified such a path; the
  // exact printed name found no issuer (review of the bounded search)
  const issuerKey = await madeKey();
  const issuer = x509(await madeAuthority({ subject: { organization: 'mesh', commonName: 'Issuer CA' }, issuer: a.root.name, spki: issuerKey.spki, signingKey: a.root.key }));
  const leafKey = await madeKey();
  const spelt = x509(
    (
      await buildCertificate({
        subject: { organization: 'mesh', commonName: 'leaf' },
        issuer: { organization: 'MESH', commonName: 'issuer  ca' },
        subjectPublicKeySpki: leafKey.spki,
        notBefore: new Date(Date.now() - DAY_MS),
        notAfter: new Date(Date.now() + DAY_MS),
        signingKey: issuerKey.signingKey,
        extensions: [],
      })
    ).pem,
  );
  t.ok(spelt.checkIssued(issuer), 'OpenSSL takes the issuer for it');
  t.ok(chainsToRoots(spelt, [issuer], [rootA]), 'found among the certificates presented');
  t.ok(chainsToRoots(spelt, [], [rootA], Date.now(), { checks: 0 }, issuerIndex([issuer])), 'found in a shared pool');

  // an issuer whose notBefore is the year 30 (GeneralizedTime): valid now, as OpenSSL reads it;
  // Date.parse read the printed year as 2030, not yet valid
  const ancient = x509(await redated(a.issuerPem, a.root.key, { notBefore: ['G', '00300101000000Z'] }));
  const leaf = x509((await a.issue(`spiffe://${TD}/svc/frontend`)).certificatePem);
  t.ok(chainsToRoots(leaf, [ancient], [rootA]), 'an issuer valid since the year 30 is valid now');

  // the path found, for the pool of resumed sessions' searches
  const path: X509Certificate[] = [];
  t.ok(chainsToRoots(leaf, [x509(a.issuerPem)], [rootA], Date.now(), { checks: 0 }, undefined, path));
  t.same(path.map((cert) => cert.fingerprint256), [x509(a.issuerPem).fingerprint256], 'its intermediates are told, the issuer first');
});

// names as OpenSSL compares them: Node prints a value's edge spaces escaped (`\ `) and a tab
// as `\09`; read as printed, 'CN=\  mesh   root\ ' named no 'CN=Mesh Root', so the peer
// window's anchor lookup (identity/peer-validity.ts) missed a root OpenSSL matched, and the
// window went back to ignoring the root's end (a review, with openssl-made certificates)
t.test('nameKey reads escaped edge spaces, tabs and case as OpenSSL compares names', async (t) => {
  t.equal(nameKey('O=mesh\nCN=\\  mesh   root\\ '), nameKey('O=Mesh\nCN=Mesh Root'), 'escaped edge spaces and runs of spaces');
  t.equal(nameKey('CN=mesh\\09root'), nameKey('CN=Mesh Root'), 'a tab printed as \\09');
  t.equal(nameKey('CN=a\\,b'), 'cn=a,b', 'an escaped comma is the comma');
  t.not(nameKey('CN=Mesh Root'), nameKey('CN=Mesh Roots'), 'another name is another key');
});
