// PEM text: DER bytes in and out of `-----BEGIN X-----` blocks. Kept apart from der.ts (ASN.1
// through node-forge) so that what every sidecar reads at start (certificates, bundles, keys)
// does not load node-forge: it is only needed to make a CSR (identity from the CA) or to sign.

export function toPem(label: string, der: Buffer): string {
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g;

/** Every PEM block in the text, in order, as label and DER bytes. */
export function pemBlocks(text: string): Array<{ label: string; der: Buffer }> {
  const blocks: Array<{ label: string; der: Buffer }> = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    blocks.push({ label: match[1] as string, der: Buffer.from((match[2] as string).replace(/\s+/g, ''), 'base64') });
  }
  return blocks;
}

/**
 * Whether the text opens a PEM block it never closes (a `-----BEGIN` with no matching `-----END`):
 * pemBlocks passes over such a block, so a file read while it was being written in place
 * would read as one certificate short rather than as broken.
 */
export function hasUnterminatedPemBlock(text: string): boolean {
  let begins = 0;
  for (let i = text.indexOf('-----BEGIN '); i !== -1; i = text.indexOf('-----BEGIN ', i + 1)) begins++;
  return begins > pemBlocks(text).length;
}

/** Splits a PEM bundle into its certificates' PEM texts. */
export function splitPemCertificates(text: string): string[] {
  return pemBlocks(text).filter((b) => b.label === 'CERTIFICATE').map((b) => toPem('CERTIFICATE', b.der));
}

/**
 * Why a key file's private key cannot be used because it is encrypted, or undefined: PKCS#8's
 * `ENCRYPTED PRIVATE KEY`, or the traditional form's `Proc-Type: 4,ENCRYPTED` header (whose
 * header lines pemBlocks does not take: it read as "holds 0 keys"). OpenSSL, asked for a
 * passphrase nobody can type, says "interrupted or cancelled", which `check` passed on.
 */
export function encryptedKeyProblem(text: string): string | undefined {
  if (!/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type:\s*4,\s*ENCRYPTED\b/m.test(text)) return undefined;
  return 'the private key is encrypted (it needs a passphrase), which meshcar cannot use: write it out unencrypted, readable only by the user running meshcar (openssl pkey -in KEY -out KEY.plain; chmod 600 KEY.plain)';
}
