// A sidecar's first contact with its CA: a CA of another trust domain is a config mistake, said
// once and final (no retries, no "unreachable"); a CA that is down is waited for with short
// retries, so the sidecar gets its SVID within about a second of the CA coming up.

import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCaDir, memoryLogger, startTestCa, unsignedToken } from '../helpers/ca.js';
import { freePort } from '../helpers/process.js';
import { caToken } from '../../src/ca/commands.js';
import { obtainIdentity } from '../../src/identity/bootstrap.js';

const ORDERS = 'spiffe://mesh.local/svc/orders';

async function workDir(t: Tap.Test): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'meshcar-first-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  return work;
}

/** First contact with `url` trusting `bundlePath` must fail at once with `expected`, never retried nor called unreachable. */
async function failsAtOnce(t: Tap.Test, url: string, bundlePath: string, expected: { code: string; message: RegExp }): Promise<void> {
  const work = await workDir(t);
  const tokenPath = join(work, 'orders.token');
  await writeFile(tokenPath, `${unsignedToken()}\n`);
  const lines: Array<Record<string, unknown>> = [];
  const started = Date.now();
  await t.rejects(
    obtainIdentity({ spiffeId: ORDERS, trustDomain: 'mesh.local', dir: join(work, 'identity'), ca: { url, bundlePath, tokenPath }, logger: memoryLogger(lines, 'debug') }),
    expected,
  );
  t.ok(Date.now() - started < 5000, 'fails fast, not after 30 s of retries');
  t.notOk(lines.some((l) => /retrying|unreachable/.test(String(l.msg))), 'never called unreachable, never retried');
}

t.test('a CA of another trust domain: one clear error at once, no retries', async (t) => {
  const ca = await startTestCa({ trustDomain: 'acme.internal' });
  t.teardown(() => ca.close());
  await failsAtOnce(t, ca.server.url, join(ca.dir, 'bundle.pem'), {
    code: 'ca_mismatch',
    message: /not the meshcar CA of trust domain "mesh\.local".*spiffe:\/\/acme\.internal\/meshcar\/ca belongs to trust domain "acme\.internal".*will not mend itself: set trustDomain/,
  });
});

t.test('a CA whose certificate does not chain to identity.ca.bundle: one clear error at once, no retries (review finding 10)', async (t) => {
  const ca = await startTestCa(); // on port 0; the bundle given is another CA's
  t.teardown(() => ca.close());
  const other = await makeCaDir();
  t.teardown(() => rm(join(other, '..'), { recursive: true, force: true }));
  await failsAtOnce(t, ca.server.url, join(other, 'bundle.pem'), {
    code: 'ca_mismatch',
    message: /the CA's certificate at https:\/\/127\.0\.0\.1:\d+ does not chain to identity\.ca\.bundle .*use the bundle\.pem of the CA that serves/,
  });
});

t.test('a CA that is down on first contact is noticed within a second of coming up', async (t) => {
  const caDir = await makeCaDir();
  t.teardown(() => rm(join(caDir, '..'), { recursive: true, force: true }));
  const work = await workDir(t);
  const tokenPath = join(work, 'orders.token');
  await writeFile(tokenPath, `${await caToken(caDir, 'orders', 600_000, false)}\n`);
  // a port nothing listens on yet: the CA will come up on it later
  const port = await freePort();
  const lines: Array<Record<string, unknown>> = [];
  const retries = () => lines.filter((l) => /first SVID request failed, retrying/.test(String(l.msg)));
  const identity = obtainIdentity({
    spiffeId: ORDERS,
    trustDomain: 'mesh.local',
    dir: join(work, 'identity'),
    ca: { url: `https://127.0.0.1:${port}`, bundlePath: join(caDir, 'bundle.pem'), tokenPath },
    logger: memoryLogger(lines, 'debug'),
  });
  // enough retries that the old backoff (0.5 s doubling to 30 s) would be waiting seconds by now
  while (retries().length < 6) await new Promise((resolve) => setTimeout(resolve, 20));
  const ca = await startTestCa({ listen: { host: '127.0.0.1', port } }, caDir);
  t.teardown(() => ca.server.close());
  const up = Date.now();
  const running = await identity;
  t.teardown(() => running.stop());
  const late = Date.now() - up;
  t.ok(late <= 2000, `SVID ${late} ms after the CA came up`);
  t.ok(retries().every((l) => Number(l.retryInMs) <= 1000), 'every wait capped at 1 s');
  // ~60 alike warnings over the 30 s start-up wait were a flood: one per 10 s, the rest debug
  const warned = retries().filter((l) => l.level === PINO_WARN);
  t.equal(warned.length, 1, `one warning for ${retries().length} alike failures within 10 s, the rest debug lines`);
  t.equal(running.identity.current().spiffeId, ORDERS);
});

t.test('a CA that stays down: one warning per window, saying how many alike failures it left out', async (t) => {
  const work = await workDir(t);
  const tokenPath = join(work, 'orders.token');
  await writeFile(tokenPath, `${unsignedToken()}\n`);
  const port = await freePort();
  const lines: Array<Record<string, unknown>> = [];
  const retries = () => lines.filter((l) => /^first SVID request failed, retrying/.test(String(l.msg)));
  const caDir = await makeCaDir();
  t.teardown(() => rm(join(caDir, '..'), { recursive: true, force: true }));
  await t.rejects(
    obtainIdentity({
      spiffeId: ORDERS,
      trustDomain: 'mesh.local',
      dir: join(work, 'identity'),
      ca: { url: `https://127.0.0.1:${port}`, bundlePath: join(caDir, 'bundle.pem'), tokenPath },
      logger: memoryLogger(lines, 'debug'),
      backoff: { baseMs: 40, capMs: 40 },
      retryWarningWindowMs: 400,
      startupTimeoutMs: 2000,
    }),
    { code: 'ca_unreachable' },
  );
  const warned = retries().filter((l) => l.level === PINO_WARN);
  t.ok(retries().length >= 20 && warned.length >= 2 && warned.length <= 7, `${warned.length} warnings for ${retries().length} failures over 2 s with a 0.4 s window`);
  // each warning after the first counts the debug lines since the one before
  let debugSince = 0;
  for (const line of retries()) {
    if (line.level !== PINO_WARN) {
      debugSince += 1;
      continue;
    }
    if (line !== warned[0]) {
      t.equal(line.suppressed, debugSince, 'the count of alike failures left out');
      t.match(String(line.msg), new RegExp(`\\(and ${debugSince} more failed alike in the last \\d+ s, not logged\\)$`));
    }
    debugSince = 0;
  }
});

/** pino's number for the warn level. */
const PINO_WARN = 40;
