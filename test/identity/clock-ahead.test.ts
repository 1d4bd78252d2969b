// A CA whose clock runs ahead of the sidecar's by more than it backdates issues certificates that
// start in the sidecar's future. The real CA process runs with its JS clock 4 s ahead
// (helpers/clock-ahead.cjs); a 10 s lifetime is backdated 1 s, so every leaf starts 2–3 s after
// the sidecar's now. The SVID is kept and stored at once (a single-use join token is not lost),
// and served from its start: at first issuance the listeners open then; at renewal the current
// SVID serves until the new one starts. One starting more than 5 min ahead is refused as a
// clock to fix.

import t from 'tap';
import tls from 'node:tls';
import https from 'node:https';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { execFileAsync, memoryLogger } from '../helpers/ca.js';
import { startSkewedMeshCa, launchSidecar, type MeshCa } from '../helpers/mesh.js';
import { startMeshcar } from '../helpers/process.js';
import { makePki } from '../helpers/pki.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';
import { DiskStore } from '../../src/identity/disk-store.js';
import { MAX_NOT_YET_VALID_MS, validateSvid, validateSvidSoon, type Svid } from '../../src/identity/svid.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const ORDERS = 'spiffe://mesh.local/svc/orders';
const AHEAD_MS = 4_000;

let ca: MeshCa;
t.before(async () => {
  ca = await startSkewedMeshCa(t.testdir(), AHEAD_MS);
});
t.teardown(() => ca?.stop());

async function singleUseToken(name: string): Promise<string> {
  const file = join(ca.dir, `${name}.token`);
  await execFileAsync(process.execPath, [CLI, 'ca', 'token', '--dir', ca.caDir, '--service', 'orders', '--single-use', '--out', file]);
  return file;
}

/** The serial a TLS server presents, verified against the bundle on this host's clock (a certificate before its start fails). */
function servedSerial(port: number, client: { cert: string; key: string }, bundle: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, cert: client.cert, key: client.key, ca: bundle, checkServerIdentity: () => undefined }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber.toLowerCase() ?? '';
      socket.destroy();
      resolve(serial);
    });
    socket.once('error', reject);
  });
}

const until = async (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

// Each test has its own single-use token and identity folder (the third needs no CA at all), and
// most of their time is waiting for a certificate to start: they run side by side.
t.jobs = 3;

t.test('first issuance: the sidecar stays up, stores the SVID at once, listens from its start; a restart needs no token', async (t) => {
  const token = await singleUseToken('orders-once');
  const [launched, client, bundle] = await Promise.all([
    launchSidecar(ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:9' }, ttl: '10s', token }),
    ca.issue('frontend'),
    readFile(ca.bundlePath, 'utf8'),
  ]);
  t.teardown(() => launched.stop('SIGKILL'));
  const warned = await launched.process.waitFor((l) => /is not valid before .*the CA's clock is ahead of this host's by at least/.test(String(l.msg)));
  const validFrom = Date.parse(String(warned.validFrom));
  t.ok(validFrom > Date.now(), `warned before the SVID starts (${Math.round(validFrom - Date.now())} ms ahead)`);
  t.match(String(warned.msg), /it is stored and will be served from then, no listener opens until then/);
  const identityDir = String(/^ {2}dir: (.+)$/m.exec(await readFile(launched.configFile, 'utf8'))?.[1]);
  const stored = new X509Certificate(await readFile(join(identityDir, 'svid.crt')));
  t.equal(stored.serialNumber.toLowerCase(), warned.serial, 'stored before it starts');
  t.equal((await launched.admin('/ready')).status, 503, 'not ready while it waits');
  t.equal(launched.process.child.exitCode, null, 'and still running');

  const ready = await launched.ready(15_000);
  t.ok(Date.parse(String(ready.process.lines.find((l) => l.msg === 'sidecar ready')?.time)) >= validFrom, 'ready once the SVID has started');
  t.equal(await servedSerial(ready.inboundPort, client, bundle), warned.serial, 'and serves it, valid on this host');
  t.notOk(launched.process.lines.some((l) => Number(l.level) >= 50), 'no error logged');

  // the single-use token is spent: a restart runs on the stored SVID
  t.equal(await launched.stop('SIGKILL'), null);
  const again = startMeshcar(['run', '--config', launched.configFile]);
  t.teardown(() => again.stop('SIGKILL'));
  const line = await again.waitFor((l) => l.msg === 'sidecar ready' || Number(l.level) >= 50);
  t.equal(line.msg, 'sidecar ready', String(line.msg));
  t.equal(await servedSerial(Number((line.inbound as { port: number }).port), client, bundle), warned.serial, 'the same SVID after the restart');
});

t.test('renewal: the new SVID is stored at once, the current one serves until the new one starts', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const dir = join(ca.dir, 'renewal-identity');
  const pending = obtainIdentity({
    spiffeId: ORDERS,
    trustDomain: 'mesh.local',
    dir,
    ca: { url: ca.url, bundlePath: ca.bundlePath, tokenPath: await singleUseToken('orders-renewal') },
    ttlMs: 10_000,
    // renewal at 30 % of the 11 s lifetime: the new SVID starts ~3 s later, well before the current one ends
    renewal: { from: 0.3, to: 0.3 },
    logger: memoryLogger(lines),
  });
  let resolved = false;
  void pending.then(() => (resolved = true), () => (resolved = true));
  // while it waits, the stored SVID is what a restart would load: the one that starts soon
  const store = new DiskStore(dir, memoryLogger([]));
  let soon: Svid | undefined;
  await until(async () => resolved || (soon = await store.load(ORDERS)) !== undefined, 'an SVID on disk');
  t.ok(soon && soon.validFrom.getTime() > Date.now(), 'the stored SVID is loaded although it starts in a moment');
  const running = await pending;
  t.teardown(() => running.stop());
  const first = running.identity.current();
  t.equal(first.serialHex, soon?.serialHex, 'the one that was stored');
  t.ok(Date.now() >= first.validFrom.getTime(), 'obtainIdentity resolves once it has started');
  t.doesNotThrow(() => validateSvid(first, ORDERS), 'valid now');

  const server = https.createServer({ ...running.identity.tls().options, ...MTLS_SERVER_OPTIONS }, (_req, res) => res.end('ok'));
  running.identity.attachServer(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const client = await ca.issue('frontend');

  const rotated = once(running.identity, 'rotated') as Promise<[Svid, Svid]>;
  const renewedWarning = () => lines.find((l) => l.level === 40 && /is not valid before/.test(String(l.msg)) && l.serial !== first.serialHex);
  await until(() => renewedWarning() !== undefined, 'the renewal obtains an SVID that starts later');
  const warned = renewedWarning() as Record<string, unknown>;
  t.match(String(warned.msg), new RegExp(`the current SVID \\(serial ${first.serialHex}\\) until then`));
  t.ok(Date.parse(String(warned.validFrom)) > Date.now(), 'it starts in the future');
  t.equal(running.identity.current().serialHex, first.serialHex, 'the current SVID is kept');
  t.equal(await servedSerial(port, client, client.bundle), first.serialHex, 'and served');
  t.equal((await store.load(ORDERS))?.serialHex, first.serialHex, 'a restart now would serve the current one (valid now) first');
  t.equal(new X509Certificate(await readFile(join(dir, 'svid.crt'))).serialNumber.toLowerCase(), warned.serial, 'the new one is stored already');

  const [renewed, previous] = await rotated;
  t.equal(previous.serialHex, first.serialHex);
  t.equal(renewed.serialHex, warned.serial, 'the new one is swapped in');
  t.ok(Date.now() >= renewed.validFrom.getTime(), 'once it has started');
  t.equal(await servedSerial(port, client, client.bundle), renewed.serialHex, 'and served');
  t.notOk(lines.some((l) => Number(l.level) >= 50), 'no error logged');
});

t.test('a certificate that starts more than 5 min ahead is refused, naming how far', async (t) => {
  const pki = await makePki();
  const id = 'spiffe://mesh.test/svc/orders';
  // issued "10 min from now" for 1 h (backdated 60 s): it starts 9 min ahead
  const far = await pki.issue(id, { now: new Date(Date.now() + 10 * 60_000) });
  t.throws(() => validateSvidSoon(far, id), { code: 'identity_invalid', message: /is not valid before .*, (9m|8m5\ds) ahead of this host's clock \(meshcar waits at most 5m for a certificate to start\): the issuer's clock or this host's is wrong; set both right \(NTP\)$/ });
  const near = await pki.issue(id, { now: new Date(Date.now() + 3 * 60_000) });
  const svid = validateSvidSoon(near, id);
  t.ok(svid.validFrom.getTime() > Date.now() + 60_000 && svid.validFrom.getTime() <= Date.now() + MAX_NOT_YET_VALID_MS, 'one starting 2 min ahead is kept');
  t.throws(() => validateSvid(near, id), { message: /is not valid before/ }, 'validateSvid itself stays strict');
});
