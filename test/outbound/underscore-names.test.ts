// An upstream named as Docker and Compose name services (my_service, orders_api.project_default)
// is taken by the config and resolved by the system resolver, as the sidecar resolves any name.
// The name is put in /etc/hosts of a private mount namespace (unshare -m, root: CI runs as
// root), and the outbound's own endpoint set, from the built dist/, looks it up there.

import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = resolve(fileURLToPath(new URL('../../dist', import.meta.url)));

function mountNamespaceUnavailable(): string | undefined {
  const probe = spawnSync('unshare', ['-m', '/bin/sh', '-c', 'true'], { timeout: 5_000 });
  if (probe.error) return `unshare is unavailable: ${probe.error.message}`;
  return probe.status === 0 ? undefined : `unshare -m failed (root is needed, as CI runs): ${String(probe.stderr).trim()}`;
}

const unavailable = mountNamespaceUnavailable();

t.test('my_service:PORT and dns:orders_api.project_default:PORT resolve through the system resolver', { skip: unavailable ?? false }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshcar-underscore-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const hosts = join(dir, 'hosts');
  await writeFile(hosts, `${await readFile('/etc/hosts', 'utf8')}\n127.0.0.41 my_service\n127.0.0.42 orders_api.project_default\n`);
  const script = join(dir, 'resolve.mjs');
  await writeFile(
    script,
    `import { parseEndpoint } from ${JSON.stringify(join(DIST, 'config/address.js'))};
import { EndpointSet } from ${JSON.stringify(join(DIST, 'outbound/endpoints.js'))};
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const endpoints = ['my_service:8080', 'dns:orders_api.project_default:9090'].map((text) => {
  const parsed = parseEndpoint(text);
  if (typeof parsed === 'string') throw new Error(text + ': ' + parsed);
  return parsed;
});
const set = new EndpointSet(endpoints, { refreshMs: 60000, decayMs: 10000, logger: quiet });
await set.start();
console.log(JSON.stringify(set.all().map((e) => e.key).sort()));
set.stop();
`,
  );
  const run = spawnSync('unshare', ['-m', '/bin/sh', '-c', `mount --bind "${hosts}" /etc/hosts && exec "${process.execPath}" "${script}"`], { timeout: 20_000, encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  t.same(JSON.parse(run.stdout.trim().split('\n').pop() ?? '[]'), ['127.0.0.41:8080', '127.0.0.42:9090'], 'both names resolved to their addresses');
});
