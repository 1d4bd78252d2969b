// Test helper: certificates that chain to a test PKI's root but break a rule OpenSSL's chain
// check enforces (the wrong extended key usage, the leaf's or an issuer's; an intermediate below an
// issuer that may sign only leaves, a leaf used as an issuer, a name outside an issuer's name constraints), made with
// the openssl CLI as an operator's hand-made PKI would be: our profile never makes them.

import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openssl } from './ca.js';
import type { TestPki } from './pki.js';

/** A certificate with its key: `chainPem` is the leaf and the issuers a peer presents with it. */
export interface BrokenChain {
  readonly chainPem: string;
  readonly privateKeyPem: string;
}

const LEAF = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature';
const CA = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign';

export interface ChainBreakers {
  /** A leaf for `uri` whose extendedKeyUsage is `eku` alone (serverAuth: no caller; clientAuth: no server). */
  withEku(uri: string, eku: 'serverAuth' | 'clientAuth'): Promise<BrokenChain>;
  /** A leaf under an intermediate CA that the PKI's issuer (path length 0) signed: PATH_LENGTH_EXCEEDED. */
  belowPathLength(uri: string): Promise<BrokenChain>;
  /** A leaf signed by another leaf (an SVID of the PKI): its issuer may not sign certificates. */
  signedByLeaf(uri: string): Promise<BrokenChain>;
  /** A leaf under an intermediate of the root whose name constraints permit only URIs of `.example.com`. */
  outsideNameConstraints(uri: string): Promise<BrokenChain>;
  /** A leaf (serverAuth and clientAuth) under an intermediate of the root whose extendedKeyUsage is `eku` alone. */
  underIssuerEku(uri: string, eku: 'serverAuth' | 'clientAuth'): Promise<BrokenChain>;
}

/** Makes its files in `dir` (a test's own directory). */
export function chainBreakers(pki: TestPki, dir: string): ChainBreakers {
  let made = 0;
  const pem = (key: { export(o: { type: 'pkcs8'; format: 'pem' }): string | Buffer }) => String(key.export({ type: 'pkcs8', format: 'pem' }));
  const files = async (name: string, certPem: string, keyPem: string) => {
    await writeFile(join(dir, `${name}.pem`), certPem);
    await writeFile(join(dir, `${name}.key`), keyPem);
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  };
  // written when first signed with (an unawaited write that failed would be an unhandled rejection)
  let issuerFiles: Promise<{ cert: string; key: string }> | undefined;
  let rootFiles: Promise<{ cert: string; key: string }> | undefined;
  const issuer = () => (issuerFiles ??= files('pki-issuer', pki.issuerPem, pem(pki.issuer.key)));
  const root = () => (rootFiles ??= files('pki-root', pki.rootPem, pem(pki.root.key)));

  /** A new P-256 key and a certificate for it, with these extensions, signed by `by`. */
  async function mint(extensions: string, by: { cert: string; key: string }): Promise<{ certPem: string; keyPem: string; files: { cert: string; key: string } }> {
    const name = `odd-${++made}`;
    const keyPem = await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout']);
    const own = await files(name, '', keyPem);
    const csr = await openssl(['req', '-new', '-key', own.key, '-subj', `/CN=${name}`]);
    await writeFile(join(dir, `${name}.ext`), `${extensions}\n`);
    const certPem = await openssl(['x509', '-req', '-days', '1', '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-CA', by.cert, '-CAkey', by.key, '-extfile', join(dir, `${name}.ext`)], csr);
    return { certPem, keyPem, files: await files(name, certPem, keyPem) };
  }
  const leafFor = (uri: string, eku = 'serverAuth,clientAuth') => `${LEAF}\nextendedKeyUsage=${eku}\nsubjectAltName=URI:${uri}`;

  return {
    async withEku(uri, eku) {
      const leaf = await mint(leafFor(uri, eku), await issuer());
      return { chainPem: leaf.certPem + pki.issuerPem, privateKeyPem: leaf.keyPem };
    },
    async belowPathLength(uri) {
      const intermediate = await mint(CA, await issuer());
      const leaf = await mint(leafFor(uri), intermediate.files);
      return { chainPem: leaf.certPem + intermediate.certPem + pki.issuerPem, privateKeyPem: leaf.keyPem };
    },
    async signedByLeaf(uri) {
      const svid = await pki.issue(`spiffe://${pki.trustDomain}/svc/signer`);
      const leaf = await mint(leafFor(uri), await files(`svid-${++made}`, svid.certificatePem, svid.privateKeyPem));
      return { chainPem: leaf.certPem + svid.chainPem, privateKeyPem: leaf.keyPem };
    },
    async outsideNameConstraints(uri) {
      const constrained = await mint(`${CA}\nnameConstraints=critical,permitted;URI:.example.com`, await root());
      const leaf = await mint(leafFor(uri), constrained.files);
      return { chainPem: leaf.certPem + constrained.certPem, privateKeyPem: leaf.keyPem };
    },
    async underIssuerEku(uri, eku) {
      const narrow = await mint(`${CA}\nextendedKeyUsage=${eku}`, await root());
      const leaf = await mint(leafFor(uri), narrow.files);
      return { chainPem: leaf.certPem + narrow.certPem, privateKeyPem: leaf.keyPem };
    },
  };
}
