// The inbound's TLS listener names the trust bundle a caller was verified under to
// peerIdentity, which keeps a leaf its issuer cuts short with its path's window for that
// bundle only. A connection's context is fixed when it is accepted, so for a handshake's time
// after the bundle changes no bundle is named (the handshake may have begun under the old one):
// such leaves are read with their path then, and kept again afterwards.

import t from 'tap';
import tls from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { createTlsListener } from '../../src/inbound/tls-listener.js';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';
import { verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import { makePki } from '../helpers/pki.js';
import { RecordingObserver } from '../helpers/inbound-fixture.js';

const TD = 'mesh.test';
const SERVER_ID = `spiffe://${TD}/svc/orders`;
const CLIENT_ID = `spiffe://${TD}/svc/frontend`;
const HANDSHAKE_TIMEOUT_MS = 2_000;

t.test('a leaf its issuer cuts short is kept per bundle, and not within a handshake of a bundle change', async (t) => {
  const pki = await makePki(TD);
  const other = await makePki(TD); // another root of the same trust domain, for a new bundle
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(SERVER_ID), SERVER_ID), pino({ level: 'silent' }));
  const callers: X509Certificate[] = [];
  const server = createTlsListener({
    identity,
    trustDomain: TD,
    logger: pino({ level: 'silent' }),
    observer: new RecordingObserver(),
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    sessionResumption: false,
    onCaller: (socket, _id, certificate) => {
      callers.push(certificate);
      socket.end('ok');
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  // outlives the issuer it presents (an openssl-made leaf with its CA's lifetime does)
  const leaf = await pki.issueWithUris([CLIENT_ID], { lifetimeMs: 400 * 86_400_000 });
  const connect = () =>
    new Promise<string>((resolve) => {
      let text = '';
      const socket = tls.connect({ host: '127.0.0.1', port, ca: `${pki.bundlePem}${other.bundlePem}`, checkServerIdentity: verifyServerSpiffeId(SERVER_ID), key: leaf.privateKeyPem, cert: leaf.chainPem });
      socket.setEncoding('utf8');
      socket.on('data', (c: string) => (text += c));
      socket.on('close', () => resolve(text));
      socket.on('error', () => {});
    });
  /** Two connections, both served: whether the second was judged on the first one's certificate object. */
  const twice = async () => {
    const answers = [await connect(), await connect()];
    if (answers.join() !== 'ok,ok') throw new Error(`a caller was refused: ${answers.join()}`);
    return callers.at(-1) === callers.at(-2);
  };

  t.ok(await twice(), 'kept: the second connection is judged on the first one’s certificate object');
  // a rotation whose bundle adds a root: the old one still verifies the caller
  const rotated = await pki.issue(SERVER_ID);
  identity.swap(validateSvid({ ...rotated, bundlePem: `${pki.bundlePem}${other.bundlePem}` }, SERVER_ID));
  const changedAt = Date.now();
  t.notOk(await twice(), 'just after the bundle changed: read with its path on each connection');
  t.ok(Date.now() - changedAt < HANDSHAKE_TIMEOUT_MS, 'both within a handshake timeout of the change');
  // once a handshake's time has passed, kept again (polled: a loaded machine may take longer)
  let keptAgain = false;
  while (!keptAgain && Date.now() - changedAt < 5 * HANDSHAKE_TIMEOUT_MS) keptAgain = await twice();
  t.ok(keptAgain, 'kept again under the new bundle once a handshake timeout has passed');
});
