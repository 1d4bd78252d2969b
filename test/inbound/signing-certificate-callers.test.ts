// Callers whose certificate chains to the bundle and carries one URI SAN of our trust domain,
// but is no X509-SVID leaf (SPIFFE X509-SVID §3.1, §5.2): a signing certificate (basicConstraints
// cA, or keyUsage keyCertSign / cRLSign, as SPIRE's intermediates carry beside
// digitalSignature, so OpenSSL takes them as TLS peers; or no keyUsage, which OpenSSL takes for
// any use), or the trust domain's own ID
// spiffe://td, which names no workload. Each is refused at the connection as bad_identity and
// reaches no app; a leaf beside them is served.

import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { rawTlsRequest } from '../helpers/raw-http.js';
import { startInbound, TD } from '../helpers/inbound-fixture.js';
import type { IssuedLeaf } from '../helpers/pki.js';

const REQUEST = 'GET / HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n';

/** A debug logger whose JSON lines land in `lines` (the refusal's words are its `detail`). */
function recordingLogger(): { logger: pino.Logger; lines: Array<{ msg: string; detail?: string }> } {
  const lines: Array<{ msg: string; detail?: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

t.test('signing certificates and the trust domain ID are no callers', async (t) => {
  const { logger, lines } = recordingLogger();
  const fx = await startInbound({ logger });
  t.teardown(() => fx.close());
  const asCaller = (leaf: IssuedLeaf) => ({ ca: fx.pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem, checkServerIdentity: () => undefined });
  const refused: Array<[string, IssuedLeaf, RegExp]> = [
    ['cA true', await fx.pki.issueWithUris([`spiffe://${TD}/svc/ca-like`], { ca: true, keyUsage: { digitalSignature: true, keyCertSign: true, cRLSign: true } }), /CA certificate/],
    ['keyCertSign', await fx.pki.issueWithUris([`spiffe://${TD}/svc/signer`], { keyUsage: { digitalSignature: true, keyCertSign: true } }), /keyCertSign/],
    ['cRLSign', await fx.pki.issueWithUris([`spiffe://${TD}/svc/crl`], { keyUsage: { digitalSignature: true, cRLSign: true } }), /cRLSign/],
    // OpenSSL's X509_check_ca (Node's cert.ca) is false for cA without keyCertSign in keyUsage
    ['cA true, keyUsage digitalSignature alone', await fx.pki.issueWithUris([`spiffe://${TD}/svc/ca-signing-only`], { ca: true, keyUsage: { digitalSignature: true } }), /CA certificate/],
    ['keyUsage keyAgreement alone', await fx.pki.issueWithUris([`spiffe://${TD}/svc/agree`], { keyUsage: { keyAgreement: true } }), /lacks digitalSignature/],
    // X509-SVID §4.3: every SVID carries keyUsage; OpenSSL takes a certificate without it for any use
    ['no keyUsage extension', await fx.pki.issueWithUris([`spiffe://${TD}/svc/no-key-usage`], { keyUsage: null }), /has no keyUsage extension/],
    ['the trust domain ID', await fx.pki.issueWithUris([`spiffe://${TD}`]), /trust domain's own ID/],
  ];
  for (const [name, leaf, words] of refused) {
    const before = fx.observer.tlsFailures.length;
    const attempt = await rawTlsRequest(fx.port, asCaller(leaf), REQUEST).then(
      (res) => `answered ${res.status}`,
      (err: Error) => err.message,
    );
    t.notMatch(attempt, /^answered/, `${name}: no HTTP answer`);
    const failures = await fx.observer.waitForTlsFailures(before + 1);
    t.same(failures.slice(before).map((f) => f.reason), ['bad_identity'], `${name}: refused as bad_identity`);
    const refusal = lines.filter((line) => line.msg === 'inbound connection refused').at(-1);
    t.match(refusal?.detail, words, `${name}: the log says why`);
  }
  t.equal(fx.observer.requests.length, 0, 'no request reached the app');
  const ok = await rawTlsRequest(fx.port, asCaller(await fx.pki.issueWithUris([`spiffe://${TD}/svc/frontend`])), REQUEST);
  t.equal(ok.status, 200, 'a leaf is served');
});
