// A caller that refuses the inbound's certificate (its verification fails and it sends a TLS
// alert: "unknown ca" when its bundle lacks our root) is not told as OpenSSL's text, "tlsv1
// alert unknown ca", which reads like a verdict on the caller's certificate: the words say
// the caller refused ours, and what to look at. Counted as `other` (the reasons are about the
// peer's certificate). A real inbound, openssl s_client with another CA as its trust.

import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startInbound } from '../helpers/inbound-fixture.js';
import { makePki } from '../helpers/pki.js';
import type { TlsFailureDetail, TlsFailureReason } from '../../src/metrics/traffic.js';

/** openssl s_client to `port`, to its exit, whatever its status. */
function sClient(args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', ...args], { timeout: 5000 }, () => resolve());
    child.stdin?.on('error', () => undefined);
    child.stdin?.end();
  });
}

t.test('a caller that refuses our certificate is said to, not taken for one with an unknown CA', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const details: Array<{ reason: TlsFailureReason; message: string }> = [];
  const record = fx.observer.tlsHandshakeFailed.bind(fx.observer);
  fx.observer.tlsHandshakeFailed = (direction: 'inbound' | 'outbound', reason: TlsFailureReason, detail?: TlsFailureDetail) => {
    details.push({ reason, message: detail?.message ?? '' });
    record(direction, reason);
  };
  const leaf = await fx.client();
  const foreign = await makePki(fx.pki.trustDomain);
  const dir = t.testdir({ 'leaf.pem': leaf.chainPem, 'leaf.key': leaf.privateKeyPem, 'foreign.pem': foreign.bundlePem });
  for (const version of ['-tls1_3', '-tls1_2']) {
    const before = details.length;
    await sClient(['-connect', `127.0.0.1:${fx.port}`, version, '-verify_return_error', '-CAfile', join(dir, 'foreign.pem'), '-cert', join(dir, 'leaf.pem'), '-cert_chain', join(dir, 'leaf.pem'), '-key', join(dir, 'leaf.key')]);
    await fx.observer.waitForTlsFailures(before + 1);
    const seen = details.slice(before);
    t.equal(seen.length, 1, `${version}: one failure`);
    t.equal(seen[0]?.reason, 'other', `${version}: reason other`);
    t.match(seen[0]?.message, /^the caller refused our certificate \(TLS alert "unknown ca"\): its trust bundle does not hold the root/, `${version}: ${String(seen[0]?.message)}`);
  }
});
