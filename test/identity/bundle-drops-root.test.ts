// A /v1/bundle answer that leaves out the root the sidecar's current certificate chains to,
// while it holds the root the CA's own certificate is under (a root retired, the CA's view of
// it; or a CA that drops a root it should not): the bundle is not taken, since with it the
// sidecar's own certificate would chain to nothing it trusts and peers under the dropped root
// would be refused. It says so at warn, once per poll, asks for a renewal instead, and keeps
// what it has. The same at start: the stored SVID is not served with it; a new one is asked
// for. The CA is a real HTTPS server with the CA's SPIFFE ID, its certificate under the second
// root; the sidecar side is the real CaClient, BundleRefresh and bundleBeforeStart. A renewal
// whose answer drops the old root (its new leaf under the new one) is taken, as a rotation's
// last step is, and says which root it dropped.

import t from 'tap';
import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { memoryLogger } from '../helpers/ca.js';
import { issueLeafCertificate } from '../../src/ca/x509-profile.js';
import { parseAndVerifyCsr } from '../../src/pki/csr.js';
import { Renewal } from '../../src/identity/renewal.js';
import { makePki } from '../helpers/pki.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { BundleRefresh, bundleBeforeStart } from '../../src/identity/bundle-refresh.js';
import { caSpiffeId } from '../../src/identity/spiffe-id.js';
import { rootCount, validateSvid } from '../../src/identity/svid.js';
import { WorkloadIdentity } from '../../src/identity/workload-identity.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

t.test("a bundle without the current certificate's root is not taken: said, a renewal asked for, the SVID and bundle kept", async (t) => {
  const old = await makePki(TD);
  const next = await makePki(TD);
  // mid-rotation: the sidecar trusts both roots, its certificate is under the old one
  const both = old.bundlePem + next.bundlePem;
  const leaf = await old.issue(ORDERS, { lifetimeMs: 600_000 });
  const current = validateSvid({ ...leaf, bundlePem: both }, ORDERS);
  const own = await next.issue(caSpiffeId(TD), { serverNames: ['127.0.0.1'] });
  let polls = 0;
  const server = https.createServer({ key: own.privateKeyPem, cert: own.chainPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/bundle') {
        polls += 1;
        return void res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(next.bundlePem);
      }
      void (async () => {
        // a renewal: a leaf under the new root, and the new root alone
        const csr = await parseAndVerifyCsr((JSON.parse(Buffer.concat(chunks).toString()) as { csr: string }).csr);
        const built = await issueLeafCertificate(next.issuer, next.issuerNotAfter, { spiffeId: ORDERS, subjectPublicKeySpki: csr.spki, lifetimeMs: 600_000 });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ spiffeId: ORDERS, chain: built.pem + next.issuerPem, bundle: next.bundlePem }));
      })();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const lines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(lines);
  const client = new CaClient({ url, trustDomain: TD, bundlePem: old.bundlePem, logger });
  const identity = new WorkloadIdentity(current, logger);
  let renewAsked = 0;
  let persisted = 0;
  const refresh = new BundleRefresh({ identity, client, intervalMs: 3_600_000, persist: async () => void (persisted += 1), renewNow: () => (renewAsked += 1), logger });
  await refresh.refresh();
  await refresh.refresh();
  t.equal(polls, 2, 'two polls answered');
  t.equal(identity.current(), current, 'the SVID and its two roots stay');
  t.equal(rootCount(identity.current()), 2);
  t.equal(renewAsked, 2, 'each poll asks for a renewal');
  t.equal(persisted, 0, 'nothing stored');
  const said = lines.filter((l) => /no longer covers the current certificate/.test(String(l.msg)));
  // the second poll says the same: at debug (bundle-refresh.ts, 38a14860)
  t.equal(said.length, 1, 'one warning for two polls saying the same');
  t.ok(said.every((l) => l.level === 40), 'at warn');
  t.match(String(said[0]?.msg), /the CA's trust bundle no longer covers the current certificate \(.*was not issued by any certificate of the chain or the bundle.*\); renewing now/, 'naming why');

  // at start: the stored SVID is not served under a bundle it does not chain to
  const startLines: Array<Record<string, unknown>> = [];
  const startClient = new CaClient({ url, trustDomain: TD, bundlePem: old.bundlePem, logger: memoryLogger(startLines) });
  t.equal(await bundleBeforeStart(current, startClient, async () => void (persisted += 1), memoryLogger(startLines)), undefined, 'at start: a new SVID is asked for');
  t.ok(startLines.some((l) => /the stored SVID is no longer trusted by the CA's bundle .*; requesting a new one/.test(String(l.msg))), 'and it says why');
  t.equal(persisted, 0, 'nothing stored');
  t.notOk(lines.some((l) => /the trust bundle no longer holds/.test(String(l.msg))), 'no root was dropped meanwhile');

  // a renewal's answer under the new root with the new root alone: taken, and the dropped root named
  const renewal = new Renewal({ identity, obtain: (svid) => client.sign({ spiffeId: ORDERS, auth: { svid } }), logger, window: { from: 0, to: 0 } });
  t.teardown(() => renewal.stop());
  renewal.start();
  const until = Date.now() + 10_000;
  while (identity.current() === current && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  renewal.stop();
  t.not(identity.current(), current, 'the renewal swapped in the new SVID');
  t.equal(rootCount(identity.current()), 1, 'with the new root alone');
  const oldRoot = new X509Certificate(old.rootPem).serialNumber.toLowerCase();
  const dropped = lines.filter((l) => /the trust bundle no longer holds/.test(String(l.msg)));
  t.equal(dropped.length, 1, 'one line says so');
  t.equal(dropped[0]?.level, 40, 'at warn');
  t.match(String(dropped[0]?.msg), new RegExp(`^the trust bundle no longer holds "meshcar root CA" \\(serial ${oldRoot}\\): peers whose certificates chain only to it are refused from now on`), 'naming the root dropped');
  t.same(dropped[0]?.rootsRemoved, [`"meshcar root CA" (serial ${oldRoot})`], 'in a field too');
});
