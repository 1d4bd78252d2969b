// Acceptance test of rotation: a live mTLS server whose 4 s leaves renew at least twice while
// clients keep handshaking and one long-lived HTTP/2 connection keeps sending requests.

import t from 'tap';
import http2 from 'node:http2';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { makePki } from '../helpers/pki.js';
import { validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity, type RenewalEvent } from '../../src/identity/workload-identity.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { peerIdentity, verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import { Renewal } from '../../src/identity/renewal.js';

const TD = 'mesh.test';
const SERVER_ID = `spiffe://${TD}/svc/orders`;
const CLIENT_ID = `spiffe://${TD}/svc/frontend`;
const LIFETIME_MS = 4000;
const logger = pino({ level: 'silent' });

t.test('a live server renews twice without failing a handshake or dropping a connection', async (t) => {
  const pki = await makePki(TD);
  const identity = new WorkloadIdentity(validateSvid(await pki.issue(SERVER_ID, { lifetimeMs: LIFETIME_MS }), SERVER_ID), logger);
  const initialSerial = identity.current().serialHex;

  const server = http2.createSecureServer({ ...identity.tls().options, ...MTLS_SERVER_OPTIONS, allowHTTP1: true }, (req, res) => {
    const caller = peerIdentity(req.socket as TLSSocket, TD);
    res.writeHead(caller.ok ? 200 : 403).end(caller.ok ? caller.id.uri : caller.message);
  });
  identity.attachServer(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  const rotations: string[] = [];
  const renewals: RenewalEvent[] = [];
  identity.on('rotated', (svid) => rotations.push(svid.serialHex));
  identity.on('renewal', (event) => renewals.push(event));
  const renewal = new Renewal({
    identity,
    // what the CA does, from the test issuer: a new key and a 4 s leaf, validated like any SVID
    obtain: async () => validateSvid(await pki.issue(SERVER_ID, { lifetimeMs: LIFETIME_MS }), SERVER_ID),
    logger,
  });
  renewal.start();
  t.ok(renewal.nextRenewalAt, 'a renewal is scheduled');
  const due = renewal.nextRenewalAt?.getTime() ?? 0;
  const svid = identity.current();
  const span = svid.notAfter.getTime() - svid.notBefore.getTime();
  t.ok(due >= svid.notBefore.getTime() + 0.5 * span - 1 && due <= svid.notBefore.getTime() + 0.7 * span + 1, 'within 50%..70% of the lifetime');

  const client = await pki.issue(CLIENT_ID, { lifetimeMs: 3_600_000 });
  const clientTls = {
    ca: pki.bundlePem,
    key: client.privateKeyPem,
    cert: client.chainPem,
    checkServerIdentity: verifyServerSpiffeId(SERVER_ID),
  };

  // one long-lived HTTP/2 connection
  const session = http2.connect(`https://127.0.0.1:${port}`, clientTls);
  const sessionEvents: string[] = [];
  session.on('close', () => sessionEvents.push('close'));
  session.on('error', (err) => sessionEvents.push(`error: ${err.message}`));
  session.on('goaway', () => sessionEvents.push('goaway'));
  await once(session, 'connect');
  const sessionSerial = (session.socket as TLSSocket).getPeerX509Certificate()?.serialNumber.toLowerCase();
  t.teardown(() => {
    renewal.stop();
    session.destroy();
    server.close();
  });

  const sessionRequest = () =>
    new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.end();
    });

  // a fresh connection (fresh agent: no pooling, no session resumption) reporting the served serial
  const freshRequest = () =>
    new Promise<{ status: number; serial: string }>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, path: '/', agent: false, ...clientTls }, (res) => {
        const serial = (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '';
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, serial }));
      });
      req.on('error', reject);
      req.end();
    });

  const failures: string[] = [];
  const served = new Set<string>();
  let sessionOk = 0;
  let freshOk = 0;
  const deadline = Date.now() + 9000;
  let settleUntil = Infinity;
  while (Date.now() < Math.min(deadline, settleUntil)) {
    const [viaSession, viaFresh] = await Promise.allSettled([sessionRequest(), freshRequest()]);
    if (viaSession.status === 'fulfilled' && viaSession.value === 200) sessionOk += 1;
    else failures.push(`long-lived: ${viaSession.status === 'fulfilled' ? viaSession.value : String(viaSession.reason)}`);
    if (viaFresh.status === 'fulfilled' && viaFresh.value.status === 200) {
      freshOk += 1;
      served.add(viaFresh.value.serial);
    } else failures.push(`fresh: ${viaFresh.status === 'fulfilled' ? viaFresh.value.status : String(viaFresh.reason)}`);
    // after the second rotation, keep going a little so new handshakes meet the newest certificate
    if (rotations.length >= 2 && settleUntil === Infinity) settleUntil = Date.now() + 400;
    await sleep(50);
  }

  t.ok(rotations.length >= 2, `renewed at least twice (${rotations.length})`);
  t.same(failures, [], 'every handshake and request succeeded');
  t.ok(freshOk > 10 && sessionOk > 10, `traffic flowed (${freshOk} fresh, ${sessionOk} long-lived)`);
  t.ok(served.size >= 3, `new handshakes saw the original and each renewed serial (${served.size})`);
  t.ok(served.has(initialSerial) && served.has(identity.current().serialHex), 'from first to latest');
  t.same(sessionEvents, [], 'the long-lived connection was never closed, reset or sent GOAWAY');
  t.equal(sessionSerial, initialSerial, 'the long-lived connection is the one made before any rotation');
  t.ok(renewals.length >= 2 && renewals.every((e) => e.result === 'success'), 'renewal events report success');
  t.ok((renewal.nextRenewalAt?.getTime() ?? 0) > Date.now() - 50, 'the next renewal is scheduled');
});
