// A TLS 1.3 caller with no key-exchange group or signature algorithm in common with the
// inbound is a protocol mismatch, as the same caller on TLS 1.2 is (there OpenSSL calls it
// "no shared cipher"; SHA-224 signatures count as none): counted as reason `protocol`, not `other`, in words naming what meshcar
// offers. Real TLS clients, a real inbound.

import t from 'tap';
import tls from 'node:tls';
import { startInbound } from '../helpers/inbound-fixture.js';
import { failureWords } from '../../src/tls-failures/describe.js';

t.test('no group or signature algorithm in common is counted as protocol, on TLS 1.3 as on 1.2', async (t) => {
  const fx = await startInbound();
  t.teardown(() => fx.close());
  const base = await fx.tlsOptions();
  const cases: Array<[string, tls.ConnectionOptions]> = [
    ['TLS 1.3, P-521 only', { ecdhCurve: 'P-521' }],
    ['TLS 1.2, P-521 only', { ecdhCurve: 'P-521', maxVersion: 'TLSv1.2' }],
    ['TLS 1.3, Ed25519 signatures only', { sigalgs: 'ed25519' }],
    // SHA-224 handshake signatures are below what meshcar signs with; OpenSSL's default
    // security level still takes them on TLS 1.2 (SHA-1 it refuses itself, client-side too)
    ['TLS 1.2, ECDSA with SHA-224 only', { sigalgs: 'ECDSA+SHA224', maxVersion: 'TLSv1.2' }],
  ];
  for (const [name, options] of cases) {
    const before = fx.observer.tlsFailures.length;
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: fx.port, ...base, ...options });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    t.not(outcome, 'connected', `${name}: refused (${outcome})`);
    const failures = await fx.observer.waitForTlsFailures(before + 1);
    t.same(failures.slice(before), [{ direction: 'inbound', reason: 'protocol' }], `${name}: one failure, reason protocol`);
  }
});

t.test('the words name the groups offered', async (t) => {
  const words = failureWords('protocol', 'caller', undefined, Object.assign(new Error('no suitable key share'), { code: 'ERR_SSL_NO_SUITABLE_KEY_SHARE' }));
  t.match(words, /no key-exchange group or signature algorithm in common/, words);
  t.match(words, /X25519, P-256, P-384/);
});
