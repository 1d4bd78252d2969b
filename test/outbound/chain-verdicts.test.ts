// An upstream endpoint whose certificate chains to our bundle but that OpenSSL's chain check
// refuses for what it is (an extended key usage without serverAuth; signed by a leaf, which
// Node reports as UNSPECIFIED with OpenSSL's text alone) is counted as invalid_certificate and
// described by that verdict and the certificate, on both codecs: it was not counted at all,
// nor in /debug/tls; the app gets 502 upstream_identity_mismatch (it got 503 "could not
// reach"). Real TLS servers presenting certificates made with openssl.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { chainBreakers, type BrokenChain } from '../helpers/chain-breakers.js';
import { makePki, request, startOutbound, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import type { Direction, TlsFailureDetail, TlsFailureReason } from '../../src/metrics/traffic.js';

const PAYMENTS = 'spiffe:\\/\\/mesh\\.test\\/svc\\/payments';

t.test('a server certificate refused by the chain check: invalid_certificate, in words, both codecs', async (t) => {
  const pki = await makePki(TD);
  const breakers = chainBreakers(pki, t.testdir());
  const servers: Array<[string, () => Promise<BrokenChain>, RegExp]> = [
    ['extended key usage clientAuth alone', () => breakers.withEku(UPSTREAM_ID, 'clientAuth'), new RegExp(`^invalid certificate: the server's certificate \\(${PAYMENTS}\\), issued by "[^"]+", is not for TLS server authentication: its extended key usage lacks serverAuth \\(OpenSSL: "unsuitable certificate purpose", INVALID_PURPOSE\\)$`)],
    ['signed by a leaf', () => breakers.signedByLeaf(UPSTREAM_ID), new RegExp(`^invalid certificate: the server's certificate \\(${PAYMENTS}\\), issued by "O=mesh\\.test", was signed by a certificate that is no CA .*\\(OpenSSL: "key usage does not include certificate signing"\\)$`)],
  ];
  for (const [name, make, words] of servers) {
    const broken = await make();
    const server = tls.createServer({ cert: broken.chainPem, key: broken.privateKeyPem, ALPNProtocols: ['h2'] }).on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const codec of ['meshcar', 'node'] as const) {
      const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [endpoint] }], { codec });
      const failures: Array<{ reason: TlsFailureReason; detail: TlsFailureDetail | undefined }> = [];
      fx.observer.tlsHandshakeFailed = (_direction: Direction, reason: TlsFailureReason, detail?: TlsFailureDetail) => void failures.push({ reason, detail });
      const res = await request(fx.port);
      await fx.close();
      t.equal(res.status, 502, `${name}, ${codec}: an identity failure, not an unreachable endpoint`);
      t.equal(res.headers['x-meshcar-error'], 'upstream_identity_mismatch', `${name}, ${codec}: upstream_identity_mismatch`);
      // each dial (the request and its retries) is one failure
      t.ok(failures.length >= 1, `${name}, ${codec}: counted`);
      t.same([...new Set(failures.map((f) => f.reason))], ['invalid_certificate'], `${name}, ${codec}: as invalid_certificate`);
      t.equal(failures[0]?.detail?.peer, endpoint, `${name}, ${codec}: the endpoint`);
      t.match(failures[0]?.detail?.message, words, `${name}, ${codec}: ${failures[0]?.detail?.message}`);
    }
  }
});
