// identity.files: files replaced the way cert-manager and friends do it (write elsewhere,
// rename into place) take effect for new handshakes without a restart; broken sets are
// refused with one warning each while the old identity keeps serving.

import t from 'tap';
import https from 'node:https';
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { makePki, type IssuedLeaf } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { identityFromFiles } from '../../src/identity/bootstrap.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { verifyServerSpiffeId } from '../../src/identity/peer-identity.js';
import type { RenewalEvent } from '../../src/identity/workload-identity.js';
import { writeSvidFileSet } from '../helpers/svid-file-set.js';

const ID = 'spiffe://mesh.test/svc/orders';

t.test('files mode hot reload', async (t) => {
  const pki = await makePki();
  const dir = await mkdtemp(join(tmpdir(), 'meshcar-files-'));
  const replace = async (file: string, content: string) => {
    const temp = join(dir, `.incoming-${Math.random().toString(16).slice(2)}`);
    await writeFile(temp, content);
    await rename(temp, file);
  };
  const first = await pki.issue(ID);
  const files = await writeSvidFileSet(dir, first);

  const lines: Array<Record<string, unknown>> = [];
  const running = await identityFromFiles({ spiffeId: ID, files, debounceMs: 200, logger: memoryLogger(lines) });
  const { identity } = running;
  const server = https.createServer({ ...identity.tls().options, ...MTLS_SERVER_OPTIONS }, (_req, res) => res.end('ok'));
  identity.attachServer(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    running.stop();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });
  t.equal(running.nextRenewalAt(), undefined, 'files are renewed by their writer');

  const client = await pki.issue('spiffe://mesh.test/svc/frontend');
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          agent: false,
          ca: pki.bundlePem,
          key: client.privateKeyPem,
          cert: client.chainPem,
          checkServerIdentity: verifyServerSpiffeId(ID),
        },
        (res) => {
          const serial = (res.socket as TLSSocket).getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '';
          res.resume().on('end', () => resolve(serial));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const nextRenewalEvent = () => once(identity, 'renewal').then(([e]) => e as RenewalEvent);
  const warnings = () => lines.filter((l) => l.level === 40);
  const swapIn = async (leaf: IssuedLeaf) => {
    await replace(files.cert, leaf.chainPem);
    await replace(files.key, leaf.privateKeyPem);
  };

  t.equal(await servedSerial(), first.serialHex);

  t.test('a good replacement takes effect without restart', async (t) => {
    const second = await pki.issue(ID);
    const event = nextRenewalEvent();
    await swapIn(second);
    t.equal((await event).result, 'success');
    t.equal(identity.current().serialHex, second.serialHex);
    t.equal(await servedSerial(), second.serialHex, 'new handshakes see the new certificate');
    t.equal(warnings().length, 0);
  });

  t.test('broken replacements are refused, one warning each, old identity kept', async (t) => {
    const kept = identity.current().serialHex;
    const settle = () => new Promise((resolve) => setTimeout(resolve, 400)); // > debounce: no stray retries

    let event = nextRenewalEvent();
    await replace(files.cert, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
    t.equal((await event).result, 'failure', 'garbage certificate');
    await settle();
    t.equal(warnings().length, 1, 'one warning');
    t.match(warnings()[0]?.msg, /refused the new identity files, keeping the current SVID: .*tls\.crt/);
    t.equal(await servedSerial(), kept);

    // a valid certificate whose key has not arrived yet (or never will)
    const third = await pki.issue(ID);
    event = nextRenewalEvent();
    await replace(files.cert, third.chainPem);
    t.equal((await event).result, 'failure', 'certificate and key do not match');
    await settle();
    t.equal(warnings().length, 2, 'one more warning');
    t.match(warnings()[1]?.msg, /private key does not match/);
    t.equal(await servedSerial(), kept, 'still the old certificate');

    // a half-written file, not replaced atomically
    event = nextRenewalEvent();
    await writeFile(files.key, third.privateKeyPem.slice(0, 60));
    t.equal((await event).result, 'failure', 'truncated key');
    await settle();
    t.equal(warnings().length, 3);
    t.equal(await servedSerial(), kept);

    // the key arrives: the set is whole again and swaps in
    event = nextRenewalEvent();
    await replace(files.key, third.privateKeyPem);
    t.equal((await event).result, 'success');
    t.equal(await servedSerial(), third.serialHex, 'recovered without restart');
    t.equal(warnings().length, 3, 'no warning for the good set');
  });

  t.test('a certificate for another service is refused', async (t) => {
    const kept = identity.current().serialHex;
    const other = await pki.issue('spiffe://mesh.test/svc/payments');
    const event = nextRenewalEvent();
    await swapIn(other);
    const result = await event;
    t.equal(result.result, 'failure');
    t.match(String((result.error as Error).message), /is for spiffe:\/\/mesh\.test\/svc\/payments, expected spiffe:\/\/mesh\.test\/svc\/orders/);
    t.equal(await servedSerial(), kept);
  });

  t.test('a set refused only as not valid yet is taken once it is, with no new write', async (t) => {
    // an issuer whose clock runs ahead: issued "7.5 s from now" for 60 s, backdated 6 s, so its
    // notBefore is ~1.5 s ahead of ours
    const ahead = await pki.issue(ID, { now: new Date(Date.now() + 7_500), lifetimeMs: 60_000 });
    let event = nextRenewalEvent();
    await swapIn(ahead);
    let result = await event;
    // the writes may land apart (certificate, then key): wait for the verdict on the whole set
    while (!/is not valid before/.test(String((result.error as Error | undefined)?.message))) {
      t.equal(result.result, 'failure', 'refused while not valid yet');
      event = nextRenewalEvent();
      result = await event;
    }
    t.equal(result.result, 'failure', 'refused: not valid yet');
    t.not(await servedSerial(), ahead.serialHex, 'the old one still served');
    const taken = await nextRenewalEvent(); // nothing written: the files are looked at again once valid
    t.equal(taken.result, 'success', 'taken once valid');
    t.equal(await servedSerial(), ahead.serialHex, 'and served');
  });
});

t.test('files mode refuses to start on a broken set', async (t) => {
  const pki = await makePki();
  const dir = await mkdtemp(join(tmpdir(), 'meshcar-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const leaf = await pki.issue(ID);
  const other = await pki.issue(ID);
  const files = { cert: join(dir, 'c.pem'), key: join(dir, 'k.pem'), bundle: join(dir, 'b.pem') };
  await writeFile(files.cert, leaf.chainPem);
  await writeFile(files.key, other.privateKeyPem);
  await writeFile(files.bundle, leaf.bundlePem);
  await t.rejects(identityFromFiles({ spiffeId: ID, files, logger: memoryLogger([]) }), { code: 'identity_invalid', message: /c\.pem .*private key does not match/ });
  await rm(files.key);
  await t.rejects(identityFromFiles({ spiffeId: ID, files, logger: memoryLogger([]) }), { code: 'identity_invalid', message: /^identity\.files\.key: cannot read .*k\.pem/ });
});
