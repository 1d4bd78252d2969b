// What makes a peer's certificate an X509-SVID leaf, beyond its chain and its one URI SAN: the
// SPIFFE X509-SVID standard (§5.2, leaf validation) has a validator refuse a certificate whose
// basicConstraints say cA, or whose keyUsage sets keyCertSign or cRLSign: a signing
// certificate vouches for others and never names a caller or a server itself. OpenSSL lets
// such a certificate through as a TLS peer when its keyUsage also has digitalSignature, as the
// intermediates of SPIRE and other external issuers (identity.files) have, with the trust
// domain's own ID as their URI SAN. (The ID's own rule, a path, is spiffe-id.ts's and
// peer-identity.ts's.)

import { KEY_USAGE, keyUsageBits } from '../pki/key-usage.js';

/** Why a peer certificate (DER, and its basicConstraints cA) is a signing certificate, not a leaf; undefined for a leaf. */
export function signingCertificateProblem(der: Buffer, ca: boolean): string | undefined {
  if (ca) return 'the certificate is a CA certificate (basicConstraints cA), which signs SVIDs and is never one (X509-SVID §5.2)';
  const bits = keyUsageBits(der) ?? 0;
  const signs = [bits & KEY_USAGE.keyCertSign ? 'keyCertSign' : '', bits & KEY_USAGE.cRLSign ? 'cRLSign' : ''].filter(Boolean);
  if (signs.length > 0) return `the certificate's keyUsage has ${signs.join(' and ')}, which an SVID leaf never has (X509-SVID §5.2)`;
  return undefined;
}
