// Renewal at the CA is for an SVID valid at the moment of the request, over real HTTPS with SVIDs
// from the CA itself, proven on the connection as a sidecar does: the CA resumes no TLS session,
// an SVID that expired since its last renewal is refused on a new connection offering the old
// session, and on a keep-alive connection that outlives the SVID the next renewal is refused.

import t from 'tap';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { endWithSvidProof, startTestCa, type TestCa } from '../helpers/ca.js';
import { buildCsr } from '../../src/pki/csr.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import { createJoinToken } from '../../src/ca/join-tokens.js';
import { TokenKeys } from '../../src/ca/token-keys.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

let ca: TestCa;
let bundle: string;

t.before(async () => {
  ca = await startTestCa();
  bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
});
t.teardown(() => ca.close());

async function newCsr(): Promise<{ csr: string; keyPem: string }> {
  const pair = await generateWorkloadKey();
  return { csr: await buildCsr(createPrivateKey(pair.privateKeyPem), createPublicKey(pair.publicKeyPem), ORDERS), keyPem: pair.privateKeyPem };
}

interface Renewal {
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** The TLS session was resumed. */
  readonly reused: boolean;
  /** The request went out on a kept-alive connection. */
  readonly reusedSocket: boolean;
  /** The last TLS session the server handed out on this connection, if any. */
  readonly session: Buffer | undefined;
}

interface RenewOptions {
  readonly client?: { cert: string; key: string };
  readonly token?: string;
  readonly ttl?: string;
  readonly session?: Buffer;
  readonly agent?: https.Agent;
  readonly version?: 'TLSv1.2' | 'TLSv1.3';
}

/** POST /v1/sign over its own HTTPS request, telling whether the TLS session was resumed. */
function sign(csr: string, options: RenewOptions): Promise<Renewal> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    let reused = false;
    const body = JSON.stringify({ csr, ...(options.ttl ? { ttl: options.ttl } : {}) });
    const req = https.request(
      new URL('/v1/sign', ca.server.url),
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
        ca: bundle,
        servername: 'localhost',
        agent: options.agent ?? false,
        ...(options.session ? { session: options.session } : {}),
        ...(options.version ? { minVersion: options.version, maxVersion: options.version } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>, reused, reusedSocket: req.reusedSocket, session }),
        );
      },
    );
    req.on('socket', (socket) => {
      const tlsSocket = socket as TLSSocket;
      tlsSocket.on('session', (ticket: Buffer) => (session = ticket));
      const onSecure = () => (reused = tlsSocket.isSessionReused());
      if (tlsSocket.encrypted && !tlsSocket.connecting && !req.reusedSocket) onSecure();
      else if (!req.reusedSocket) tlsSocket.once('secureConnect', onSecure);
    });
    req.on('error', reject);
    // a renewal proves the SVID on its connection, as a sidecar's does
    if (options.client) endWithSvidProof(req, options.client, body);
    else req.end(body);
  });
}

/** Long enough for the requests made while it is valid on a loaded 2-core machine (3 s failed once under load). */
const SHORT_TTL = '5s';

/** An SVID from the CA that lives `ttl` (the CA's minimum is 1s), and when it expires. */
async function shortLivedSvid(ttl: string): Promise<{ client: { cert: string; key: string }; notAfterMs: number }> {
  const { csr, keyPem } = await newCsr();
  const issued = await sign(csr, { token: createJoinToken((await TokenKeys.load(ca.dir)).signer, ORDERS, 60_000, false), ttl });
  if (issued.status !== 200) throw new Error(`issuance failed: ${JSON.stringify(issued.body)}`);
  const chain = String(issued.body.chain);
  return { client: { cert: chain, key: keyPem }, notAfterMs: Date.parse(new X509Certificate(chain).validTo) };
}

async function untilExpired(notAfterMs: number): Promise<void> {
  const deadline = notAfterMs + 5000;
  while (Date.now() < notAfterMs) {
    if (Date.now() > deadline) throw new Error('the certificate did not expire');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function deniedForExpiry(t: Tap.Test, res: Renewal): void {
  t.equal(res.status, 401, `refused (got ${res.status} ${String(res.body.error ?? 'a new SVID')})`);
  t.equal(res.body.error, 'bad_svid');
  t.match(String(res.body.message), /expired/);
}

// the two cases side by side: each mostly waits for a 5 s SVID to expire
t.jobs = 2;

t.test('an SVID that expired after its first handshake cannot renew by resuming the TLS session', async (t) => {
  // TLS 1.3 only: a proof made on TLS 1.2 is refused whatever else it carries (svid-proof.test.ts)
  for (const version of ['TLSv1.3'] as const) {
    await t.test(version, async (t) => {
      // the CSRs are made first, so the short lifetime is spent on the requests only
      const [renewalA, renewalB] = await Promise.all([newCsr(), newCsr()]);
      const svid = await shortLivedSvid(SHORT_TTL);
      const first = await sign(renewalA.csr, { client: svid.client, version });
      t.equal(first.status, 200, 'a renewal while the SVID is valid works');
      t.notOk(first.reused);
      t.ok(Date.now() < svid.notAfterMs, 'made before the SVID expired');

      await untilExpired(svid.notAfterMs);
      // offer whatever session the first connection ended with (none, if the CA gave none)
      const late = await sign(renewalB.csr, { client: svid.client, version, ...(first.session ? { session: first.session } : {}) });
      t.notOk(late.reused, `the CA does not resume TLS sessions (a session was ${first.session ? '' : 'not '}offered)`);
      deniedForExpiry(t, late);
    });
  }
  t.ok(ca.logLines.some((l) => l.event === 'ca.deny' && l.reason === 'bad_svid' && /expired/.test(String(l.message))), 'the denial is audited');
});

t.test('a keep-alive connection that outlives the SVID gets no renewal', async (t) => {
  const [renewalA, renewalA2, renewalB] = await Promise.all([newCsr(), newCsr(), newCsr()]);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const svid = await shortLivedSvid(SHORT_TTL);
  const first = await sign(renewalA.csr, { client: svid.client, agent });
  t.equal(first.status, 200);
  // a second one on the same connection while valid: proven again on it, and renewed
  const second = await sign(renewalA2.csr, { client: svid.client, agent });
  t.ok(second.reusedSocket, 'on the same connection');
  t.equal(second.status, 200, `a second renewal on it while valid works (${String(second.body.message ?? '')})`);
  t.ok(Date.now() < svid.notAfterMs, 'made before the SVID expired');

  await untilExpired(svid.notAfterMs);
  const late = await sign(renewalB.csr, { client: svid.client, agent });
  t.ok(late.reusedSocket, 'the second request went out on the same connection');
  deniedForExpiry(t, late);
  t.match(await ca.metrics.render(), /meshcar_ca_requests_denied_total\{reason="bad_svid"\} [1-9]/);
});
