// doctor's CA check on a CA that answers with a certificate out of its dates (expired, or not
// valid yet: a clock far off on either host, a stopped CA process): it is reachable, so it is
// not called "unreachable" with "start the CA" as the fix, but named for its dates, with the
// clocks to compare. A real TLS server with a certificate for the CA's SPIFFE ID from a test
// PKI whose bundle the config names.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { caUrlConfig } from '../helpers/ca-url-config.js';
import { makePki } from '../helpers/pki.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkCa } from '../../src/doctor/ca.js';

const HOUR = 3_600_000;

for (const [what, now, said] of [
  ['expired an hour ago', () => new Date(Date.now() - 2 * HOUR), /its certificate has expired \(CERT_HAS_EXPIRED\)/],
  ['valid from an hour on', () => new Date(Date.now() + HOUR), /its certificate is not valid yet \(CERT_NOT_YET_VALID\)/],
] as const) {
  t.test(`a CA whose certificate ${what}: reachable, its dates named`, async (t) => {
    const pki = await makePki('mesh.local');
    const served = await pki.issue('spiffe://mesh.local/meshcar/ca', { now: now(), lifetimeMs: HOUR, serverNames: ['127.0.0.1'] });
    const server = tls.createServer({ cert: served.chainPem, key: served.privateKeyPem });
    server.on('tlsClientError', () => {});
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const file = await caUrlConfig(t, (server.address() as AddressInfo).port, pki.bundlePem);
    const result = await checkCa(await loadSidecarConfig(file));
    t.equal(result?.status, 'fail');
    t.match(result?.message, /^reachable, but its certificate cannot be used now: /, 'reachable, not "unreachable"');
    t.match(result?.message, said, 'naming its dates');
    t.match(result?.fix, /clock/, 'the clocks to compare, not "start the CA"');
  });
}
