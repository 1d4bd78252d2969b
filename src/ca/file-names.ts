// The names of a CA folder's certificate and key files, on their own: what judges a folder by
// them (out-path.ts, and through it a sidecar's identity.dir check) must not load the CA's
// store, which loads node-forge (a sidecar never needs it in identity.files mode, and makes its
// CSR without it: test/e2e/lazy-modules).

export const CA_FILES = {
  rootCert: 'root.crt',
  rootKey: 'root.key',
  issuerCert: 'issuer.crt',
  issuerKey: 'issuer.key',
  bundle: 'bundle.pem',
} as const;
