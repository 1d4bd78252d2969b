// A CA whose answers carry a trust bundle that does not hold the root its own server
// certificate chains to (another CA's bundle.pem in its folder): the sidecar takes neither the
// SVID nor the bundle, since either would leave it trusting only roots none of its peers chain
// to. The CA here is a real HTTPS server with the CA's SPIFFE ID, its certificate from our CA
// (openAuthority), answering what the test sets; the sidecar side is the real CaClient,
// Renewal and BundleRefresh. A bundle that adds a root beside ours (root rotation's first step)
// is still taken. One with no certificate at all (empty, a proxy's page) is said as that.

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { memoryLogger, startTestCa } from '../helpers/ca.js';
import { makePki, type TestPki } from '../helpers/pki.js';
import { caToken, openAuthority } from '../../src/ca/commands.js';
import type { Authority } from '../../src/ca/authority.js';
import { issueLeafCertificate } from '../../src/ca/x509-profile.js';
import { parseAndVerifyCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { CaClient } from '../../src/identity/ca-client.js';
import { BundleRefresh } from '../../src/identity/bundle-refresh.js';
import { Renewal } from '../../src/identity/renewal.js';
import { caSpiffeId } from '../../src/identity/spiffe-id.js';
import { rootCount, type Svid } from '../../src/identity/svid.js';
import { WorkloadIdentity, type RenewalEvent } from '../../src/identity/workload-identity.js';

const TD = 'mesh.local';
const ORDERS = `spiffe://${TD}/svc/orders`;

/** What the fake CA signs with and hands out: our issuer or another root's, and which roots. */
interface Answer {
  signer: 'ours' | 'other';
  bundle: 'ours' | 'other' | 'both' | 'empty' | 'html';
}

interface Fixture {
  readonly url: string;
  readonly bundlePem: string;
  readonly first: Svid;
  answer: Answer;
}

async function fakeCa(t: Tap.Test): Promise<Fixture> {
  const ca = await startTestCa({ maxTtlMs: 3_600_000 });
  t.teardown(() => ca.close());
  const bundlePem = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const first = await new CaClient({ url: ca.server.url, trustDomain: TD, bundlePem, logger: memoryLogger([]) }).sign({ spiffeId: ORDERS, auth: { token: await caToken(ca.dir, 'orders', 600_000, true) }, ttlMs: 600_000 });
  const authority: Authority = await openAuthority(ca.dir, { maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 });
  const other: TestPki = await makePki(TD);
  // the server's own certificate: the CA's SPIFFE ID, from our CA (what sidecars verify)
  const keys = await generateWorkloadKey();
  const own = await authority.issue(caSpiffeId(TD), createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' }), undefined, ['127.0.0.1', 'localhost']);
  const fixture: Fixture = { url: '', bundlePem, first, answer: { signer: 'ours', bundle: 'ours' } };
  const roots = () => ({ ours: bundlePem, other: other.bundlePem, both: bundlePem + other.bundlePem, empty: '', html: '<html>\n<body>Bad Gateway</body>\n</html>' })[fixture.answer.bundle];
  const server = https.createServer({ key: keys.privateKeyPem, cert: own.chain }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        if (req.url === '/v1/bundle') return res.writeHead(200, { 'content-type': 'application/x-pem-file' }).end(roots());
        const csr = await parseAndVerifyCsr((JSON.parse(Buffer.concat(chunks).toString()) as { csr: string }).csr);
        const chain =
          fixture.answer.signer === 'ours'
            ? (await authority.issue(ORDERS, csr.spki, 600_000)).chain
            : (await issueLeafCertificate(other.issuer, other.issuerNotAfter, { spiffeId: ORDERS, subjectPublicKeySpki: csr.spki, lifetimeMs: 600_000 })).pem + other.issuerPem;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ spiffeId: ORDERS, chain, bundle: roots() }));
      })();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return Object.assign(fixture, { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

t.test('a sign answer whose bundle leaves out the root the CA answered under is refused; the SVID serves on', async (t) => {
  const fake = await fakeCa(t);
  const client = new CaClient({ url: fake.url, trustDomain: TD, bundlePem: fake.bundlePem, logger: memoryLogger([]) });

  fake.answer = { signer: 'other', bundle: 'other' };
  await t.rejects(client.sign({ spiffeId: ORDERS, auth: { svid: fake.first } }), { code: 'identity_invalid', message: /trust bundle does not hold the root its own certificate chains to/ }, 'a leaf and bundle of another root: refused');

  // through the renewal loop: failures reported, the current SVID and its bundle kept
  const lines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(lines);
  const identity = new WorkloadIdentity(fake.first, logger);
  const events: RenewalEvent[] = [];
  identity.on('renewal', (event) => events.push(event));
  const renewal = new Renewal({ identity, obtain: (current) => new CaClient({ url: fake.url, trustDomain: TD, bundlePem: fake.bundlePem, logger }).sign({ spiffeId: ORDERS, auth: { svid: current } }), logger, window: { from: 0, to: 0 }, backoff: { baseMs: 10, capMs: 20 } });
  renewal.start();
  t.teardown(() => renewal.stop());
  const until = Date.now() + 10_000;
  while (events.length < 2 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
  renewal.stop();
  t.ok(events.length >= 2 && events.every((e) => e.result === 'failure'), `${events.length} renewals failed`);
  t.equal(identity.current(), fake.first, 'the current SVID serves, with its bundle');
  t.ok(lines.some((l) => /SVID renewal failed, still serving the current SVID: .*does not hold the root/.test(String(l.msg))), 'the log says why');

  // our issuer with both roots: root rotation's first step, taken
  fake.answer = { signer: 'ours', bundle: 'both' };
  const added = await client.sign({ spiffeId: ORDERS, auth: { svid: fake.first } });
  t.equal(rootCount(added), 2, 'a bundle adding a root beside ours is taken');
  // another root's leaf with both roots: the CA's own root is in it, so taken (a CA whose new issuer is under the added root)
  fake.answer = { signer: 'other', bundle: 'both' };
  t.equal(rootCount(await client.sign({ spiffeId: ORDERS, auth: { svid: fake.first } })), 2, 'a leaf under the added root, both roots: taken');
});

/** A fake CA, a client of it, the identity it issued first, and a bundle poll of that identity counting the renewals it asks for. */
async function pollingSetup(t: Tap.Test) {
  const fake = await fakeCa(t);
  const lines: Array<Record<string, unknown>> = [];
  const logger = memoryLogger(lines);
  const client = new CaClient({ url: fake.url, trustDomain: TD, bundlePem: fake.bundlePem, logger });
  const identity = new WorkloadIdentity(fake.first, logger);
  let asked = 0;
  const refresh = new BundleRefresh({ identity, client, intervalMs: 3_600_000, persist: async () => undefined, renewNow: () => (asked += 1), logger });
  return { fake, lines, client, identity, refresh, renewAsked: () => asked };
}

t.test('a /v1/bundle answer that leaves out the root the CA answered under is refused; the bundle in use stays', async (t) => {
  const { fake, lines, client, identity, refresh, renewAsked } = await pollingSetup(t);

  fake.answer = { signer: 'ours', bundle: 'other' };
  await t.rejects(client.fetchBundle(fake.bundlePem), { code: 'identity_invalid', message: /sent a trust bundle that does not hold the root its own certificate chains to/ }, 'fetchBundle refuses it');
  await refresh.refresh();
  t.equal(identity.current(), fake.first, 'the bundle in use stays');
  t.equal(renewAsked(), 0, 'and no renewal is asked for (which would fetch a leaf under that root)');
  t.ok(lines.some((l) => /could not fetch the CA's trust bundle, keeping the current one: .*does not hold the root/.test(String(l.msg))), 'the log says why');

  fake.answer = { signer: 'ours', bundle: 'both' };
  await refresh.refresh();
  t.equal(rootCount(identity.current()), 2, 'a bundle adding a root beside ours is taken');
});

t.test('a /v1/bundle answer with no certificate (empty, a page) is refused as that, not as a wrong bundle.pem; the bundle stays', async (t) => {
  const { fake, lines, client, identity, refresh, renewAsked } = await pollingSetup(t);
  fake.answer = { signer: 'ours', bundle: 'empty' };
  await refresh.refresh();
  fake.answer = { signer: 'ours', bundle: 'html' };
  await refresh.refresh();
  const said = lines.map((l) => String(l.msg)).filter((m) => /could not fetch the CA's trust bundle/.test(m));
  t.equal(said.length, 2, 'one line per poll');
  t.match(said[0], /keeping the current one: the CA at https:\/\/127\.0\.0\.1:\d+ sent a trust bundle that holds no PEM certificate \(an empty body\); refused$/, 'the empty one, said as empty');
  t.match(said[1], /holds no PEM certificate \(39 bytes: "<html> <body>Bad Gateway<\/body> <\/html>"\); refused$/, 'the page, its start quoted on one line');
  t.equal(identity.current(), fake.first, 'the bundle in use stays');
  t.equal(renewAsked(), 0, 'no renewal asked for');
  // the same in a sign answer
  fake.answer = { signer: 'ours', bundle: 'empty' };
  await t.rejects(client.sign({ spiffeId: ORDERS, auth: { svid: fake.first } }), { code: 'identity_invalid', message: /sent a new SVID whose trust bundle holds no PEM certificate \(an empty body\); refused$/ });
});
