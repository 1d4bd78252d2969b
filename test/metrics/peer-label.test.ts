// The inbound's `peer` label stays short whatever SPIFFE ID a caller holds: a real Sidecar
// (identity from files, inbound to an HTTP app, admin port), a caller whose CA-signed ID has a
// 1,900-character path, a few requests, and GET /metrics read back: every label of that caller
// is at most 128 characters, two such callers stay two series, and a short ID is its own label.

import t from 'tap';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';
import { parseSpiffeId } from '../../src/identity/spiffe-id.js';
import { MAX_PEER_LABEL, peerLabel } from '../../src/metrics/peer-label.js';
import { makePki } from '../helpers/pki.js';
import { h2Connect, h2Request } from '../helpers/inbound-fixture.js';
import { httpGet } from '../helpers/mesh.js';

const TD = 'mesh.test';
const SERVER_ID = `spiffe://${TD}/svc/orders`;
const silent = pino({ level: 'silent' });

/** The body of GET `path` on an admin port. */
const get = async (port: number, path: string): Promise<string> => (await httpGet(port, path)).body;

t.test('peerLabel: short IDs as they are, long ones clipped with a hash of the whole ID', async (t) => {
  t.equal(peerLabel(parseSpiffeId(`spiffe://${TD}/svc/billing`)), 'billing');
  t.equal(peerLabel(parseSpiffeId(`spiffe://${TD}/ns/prod/sa/billing`)), `spiffe://${TD}/ns/prod/sa/billing`);
  const a = peerLabel(parseSpiffeId(`spiffe://${TD}/svc/${'a'.repeat(2000)}`));
  const b = peerLabel(parseSpiffeId(`spiffe://${TD}/svc/${'a'.repeat(1999)}`));
  t.equal(a.length, MAX_PEER_LABEL);
  t.not(a, b, 'IDs alike in their first characters stay distinct');
});

t.test('a caller with a 1,900-character SPIFFE ID: its labels in /metrics stay short', async (t) => {
  const pki = await makePki(TD);
  const dir = t.testdir();
  const svid = await pki.issue(SERVER_ID);
  await writeFile(join(dir, 'svid.crt'), svid.chainPem);
  await writeFile(join(dir, 'svid.key'), svid.privateKeyPem);
  await writeFile(join(dir, 'bundle.pem'), pki.bundlePem);
  const app = http.createServer((_req, res) => res.end('ok'));
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => app.close());
  const file = join(dir, 'orders.yaml');
  await writeFile(
    file,
    [
      'service: orders',
      `trustDomain: ${TD}`,
      'identity:',
      `  files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}`,
      'inbound:',
      '  listen: 127.0.0.1:0',
      `  app: http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      'admin:',
      '  listen: 127.0.0.1:0',
      '',
    ].join('\n'),
  );
  const sidecar = new Sidecar(await loadSidecarConfig(file), silent);
  t.teardown(() => sidecar.stop());
  const addresses = await sidecar.start();

  const longIds = [`spiffe://${TD}/svc/${'x'.repeat(1900)}`, `spiffe://${TD}/svc/${'x'.repeat(1899)}`];
  for (const id of [...longIds, `spiffe://${TD}/svc/billing`]) {
    const leaf = await pki.issue(id);
    const session = await h2Connect(addresses.inbound!.port, { ca: pki.bundlePem, key: leaf.privateKeyPem, cert: leaf.chainPem, checkServerIdentity: () => undefined });
    for (const method of ['GET', 'POST', 'PUT']) {
      for (let i = 0; i < 5; i++) t.equal((await h2Request(session, { ':method': method, ':path': `/orders/p${i}` })).status, 200);
    }
    session.destroy();
  }
  const text = await get(addresses.admin.port, '/metrics');
  const peers = new Set([...text.matchAll(/peer="([^"]*)"/g)].map((m) => m[1] as string));
  t.same([...peers].map((p) => p.length <= MAX_PEER_LABEL), [true, true, true], `three peer labels, none over ${MAX_PEER_LABEL} characters (${[...peers].map((p) => p.length).join(', ')})`);
  t.ok(peers.has('billing'), 'a short ID is its service name');
  const longest = Math.max(...text.split('\n').map((line) => line.length));
  t.ok(longest < 600, `the longest /metrics line is ${longest} characters`);
});
