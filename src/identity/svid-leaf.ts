// What makes a peer's certificate an X509-SVID leaf, beyond its chain and its one URI SAN: the
// SPIFFE X509-SVID standard (§5.2, leaf validation) has a validator refuse a certificate whose
// basicConstraints say cA, or whose keyUsage sets keyCertSign or cRLSign: a signing
// certificate vouches for others and never names a caller or a server itself. OpenSSL lets
// such a certificate through as a TLS peer when its keyUsage also has digitalSignature, as the
// intermediates of SPIRE and other external issuers (identity.files) have, with the trust
// domain's own ID as their URI SAN; and a cA one whose keyUsage lacks keyCertSign passes
// Node's `ca` check too, so cA is read from the certificate itself (cert-extensions.ts). A leaf
// must carry keyUsage with digitalSignature (X509-SVID §4.3: "The key usage extension MUST be
// set on all SVIDs", and a leaf sets digitalSignature; RFC 8446 §4.4.2.2: a TLS 1.3 peer signs
// the handshake with it). OpenSSL takes a certificate without the extension for any use, and
// so did we; go-spiffe and the Rust spiffe crate refuse it, as now we do. (The ID's own rule,
// a path, is spiffe-id.ts's and peer-identity.ts's.)

import { basicConstraintsCa, KEY_USAGE, keyUsageBits } from '../pki/cert-extensions.js';

/** Why a peer certificate (DER, and Node's `ca` for it) is no SVID leaf; undefined for a leaf. */
export function svidLeafProblem(der: Buffer, ca: boolean): string | undefined {
  if (ca || basicConstraintsCa(der)) return 'the certificate is a CA certificate (basicConstraints cA), which signs SVIDs and is never one (X509-SVID §5.2)';
  const bits = keyUsageBits(der);
  if (bits === undefined) return 'the certificate has no keyUsage extension, which every SVID carries, a leaf with digitalSignature (X509-SVID §4.3)';
  const signs = [bits & KEY_USAGE.keyCertSign ? 'keyCertSign' : '', bits & KEY_USAGE.cRLSign ? 'cRLSign' : ''].filter(Boolean);
  if (signs.length > 0) return `the certificate's keyUsage has ${signs.join(' and ')}, which an SVID leaf never has (X509-SVID §5.2)`;
  if ((bits & KEY_USAGE.digitalSignature) === 0) return "the certificate's keyUsage lacks digitalSignature, which an SVID leaf sets and signs its TLS handshakes with (X509-SVID §4.3)";
  return undefined;
}
