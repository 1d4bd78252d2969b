// identity.files: a rotation whose files cannot be read for a moment (EMFILE, a chmod under way,
// a link that dangles while its target is replaced) is not lost. The read is tried again with
// backoff (1 s, 2 s, ... 30 s) until it works, with no further write for the watcher to see.
// The unreadable moment is made real for root too: the certificate path is a link into a folder
// nobody watches, whose target is gone, then back. (meshcar watches the folders links lead into,
// files-linked.test.ts; followLinks: false leaves this one unwatched, as a folder that cannot be
// watched would be, so only the retries can find the change.)

import t from 'tap';
import { once } from 'node:events';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { identityFromFiles } from '../../src/identity/bootstrap.js';
import type { RenewalEvent } from '../../src/identity/workload-identity.js';
import { identityView, watchIdentityMetrics } from '../../src/identity/sidecar-identity.js';
import { Metrics } from '../../src/metrics/registry.js';

const ID = 'spiffe://mesh.test/svc/orders';

const until = async (condition: () => boolean, what: string, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

t.test('a rotation read while the certificate is unreadable lands once it can be read, with no new write', async (t) => {
  const pki = await makePki();
  const base = t.testdir();
  const certs = join(base, 'certs'); // watched: the folder the config names
  const store = join(base, 'store'); // not watched: where the certificate link points
  await mkdir(certs);
  await mkdir(store);
  const [first, second] = [await pki.issue(ID), await pki.issue(ID)];
  const files = { cert: join(certs, 'tls.crt'), key: join(certs, 'tls.key'), bundle: join(certs, 'ca.crt') };
  await writeFile(join(store, 'tls.crt'), first.chainPem);
  await symlink('../store/tls.crt', files.cert);
  await writeFile(files.key, first.privateKeyPem, { mode: 0o600 });
  await writeFile(files.bundle, first.bundlePem);

  const lines: Array<Record<string, unknown>> = [];
  const running = await identityFromFiles({ spiffeId: ID, files, debounceMs: 100, followLinks: false, logger: memoryLogger(lines, 'debug') });
  t.teardown(() => running.stop());
  const { identity } = running;
  t.equal(identity.current().serialHex, first.serialHex);
  const events: RenewalEvent[] = [];
  identity.on('renewal', (e) => events.push(e));

  // the certificate's target is gone for a moment, and the new key is renamed in: the watcher's
  // last event comes while the certificate cannot be read
  await rm(join(store, 'tls.crt'));
  const temp = join(certs, '.tls.key.new');
  await writeFile(temp, second.privateKeyPem, { mode: 0o600 });
  await rename(temp, files.key);
  await until(() => events.some((e) => e.result === 'failure'), 'the rotation refused as unreadable', 5000);
  const refusal = lines.find((l) => l.level === 40);
  t.match(String(refusal?.msg), /refused the new identity files, keeping the current SVID: identity\.files\.cert: cannot read .*tls\.crt: .*ENOENT.*; reading them again in 1s$/, 'one warning, saying it reads again');
  // still unreadable at the first retry: the next one is 2 s later, and it is not news (debug)
  await until(() => lines.some((l) => l.level === 20 && /still cannot be read/.test(String(l.msg))), 'a second failed read', 3000);
  t.equal(lines.find((l) => /still cannot be read/.test(String(l.msg)))?.retryInMs, 2000, 'backoff doubles');
  t.equal(lines.filter((l) => l.level === 40).length, 1, 'the same failure is warned once');
  t.equal(identity.current().serialHex, first.serialHex, 'the current SVID is kept meanwhile');

  // the new certificate arrives where nobody watches: only a retry can find it
  const rotated = once(identity, 'rotated');
  await writeFile(join(store, '.tls.crt.new'), second.chainPem);
  await rename(join(store, '.tls.crt.new'), join(store, 'tls.crt'));
  await until(() => identity.current().serialHex === second.serialHex, 'the rotation lands after the read works', 4000);
  await rotated;
  t.equal(events.at(-1)?.result, 'success', 'counted as a success');
  t.ok(lines.some((l) => l.msg === 'the identity files can be read again'), 'the recovery is logged');
  t.equal(identity.tls().options.cert, second.chainPem, 'the new certificate is what TLS presents');
});

t.test('files that fail, then hold the set in use again: a success, and /identity stops saying they fail', async (t) => {
  const pki = await makePki();
  const certs = t.testdir();
  const [inUse, other] = [await pki.issue(ID), await pki.issue(ID)];
  const files = { cert: join(certs, 'tls.crt'), key: join(certs, 'tls.key'), bundle: join(certs, 'ca.crt') };
  await writeFile(files.cert, inUse.chainPem);
  await writeFile(files.key, inUse.privateKeyPem, { mode: 0o600 });
  await writeFile(files.bundle, inUse.bundlePem);
  const lines: Array<Record<string, unknown>> = [];
  const running = await identityFromFiles({ spiffeId: ID, files, debounceMs: 50, logger: memoryLogger(lines) });
  t.teardown(() => running.stop());
  const metrics = new Metrics();
  watchIdentityMetrics(metrics, running);
  const failing = () => identityView(running, ID, 'files').renewalFailing as { failures: number; lastError: string } | null;
  const events: RenewalEvent[] = [];
  running.identity.on('renewal', (e) => events.push(e));
  const replace = async (file: string, content: string) => {
    await writeFile(`${file}.new`, content, { mode: 0o600 });
    await rename(`${file}.new`, file);
  };

  // the key cannot be read for a while (moved away), then is back as it was: no new set, no swap
  await rename(files.key, join(certs, 'away'));
  await until(() => failing() !== null, 'the unreadable key shown as failing', 5000);
  t.match(failing()?.lastError, /^identity\.files\.key: cannot read .*tls\.key: .*ENOENT/, '/identity: why');
  await rename(join(certs, 'away'), files.key);
  await until(() => failing() === null, 'readable again: nothing failing', 5000);
  t.equal(events.at(-1)?.result, 'success', 'counted as a success');
  t.ok(lines.some((l) => l.msg === 'the identity files hold the SVID in use again'), 'said so');

  // a key that does not match is refused, then the key in use is written back
  await replace(files.key, other.privateKeyPem);
  await until(() => failing() !== null, 'the mismatched key shown as failing', 5000);
  t.match(failing()?.lastError, /private key does not match/, '/identity: why');
  await replace(files.key, inUse.privateKeyPem);
  await until(() => failing() === null, 'the key in use back: nothing failing', 5000);
  t.equal(running.identity.current().serialHex, inUse.serialHex, 'the SVID in use all along');
  t.same(events.map((e) => e.result), ['failure', 'success', 'failure', 'success'], 'each failure and each recovery counted once');
});
