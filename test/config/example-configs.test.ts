// config/example-sidecar.yaml and config/example-ca.yaml are what docs/first-services.md says:
// every key, each with its default. Proved three ways: `meshcar check` passes both (in a folder
// where the files they name exist), each written setting equals what leaving it out gives, and
// every key the config readers accept is named in the file (written or commented out).

import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { loadCaConfig } from '../../src/config/ca-config.js';
import { effectiveYamlView } from '../../src/config/effective-yaml.js';
import { configWarnings } from '../../src/config/config-warnings.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/cli.js');
const SIDECAR = join(ROOT, 'config/example-sidecar.yaml');
const CA = join(ROOT, 'config/example-ca.yaml');

function cli(args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile(process.execPath, [CLI, ...args], { cwd }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, out: stdout + stderr })));
}

t.test('meshcar check passes both, run where the files they name exist', async (t) => {
  const cwd = t.testdir();
  t.equal((await cli(['ca', 'init', '--dir', 'certs/ca', '--trust-domain', 'mesh.local'], cwd)).code, 0);
  t.equal((await cli(['ca', 'token', '--dir', 'certs/ca', '--service', 'orders', '--out', 'certs/orders.token'], cwd)).code, 0);
  for (const file of [SIDECAR, CA]) {
    const checked = await cli(['check', '--config', file], cwd);
    t.equal(checked.code, 0, checked.out);
    t.notMatch(checked.out, /warning/, `${file}: no warning`);
  }
});

// the demos' configs are the first a user runs: a warning at each start (connectTimeout not below
// timeout, an ID no sidecar carries) would teach them to ignore warnings. Read as run reads them; their files need not exist.
t.test('the demos\' sidecar configs give no warning', async (t) => {
  const folders = ['config/demo', 'config/demo-rotate'];
  let sidecars = 0;
  for (const folder of folders) {
    for (const name of (await readdir(join(ROOT, folder))).filter((f) => f.endsWith('.yaml') && f !== 'ca.yaml')) {
      const file = join(ROOT, folder, name);
      t.same(configWarnings(await loadSidecarConfig(file), file), [], `${folder}/${name}`);
      sidecars++;
    }
  }
  t.equal(sidecars, 4, 'frontend and orders of both demos');
});

t.test('every written setting is its default', async (t) => {
  const dir = t.testdir({
    // the example's required keys alone: everything else left out
    'required.yaml': [
      'service: orders',
      'trustDomain: mesh.local',
      'identity: {ca: {url: "https://127.0.0.1:8443", bundle: certs/ca/bundle.pem, token: certs/orders.token}, dir: certs/orders}',
      'inbound: {listen: 0.0.0.0:15443, app: "http://127.0.0.1:8080"}',
      'outbound: {listen: 127.0.0.1:15001, upstreams: {payments: {endpoints: [127.0.0.1:16443], identity: spiffe://mesh.local/svc/payments}}}',
      '',
    ].join('\n'),
    'required-ca.yaml': 'trustDomain: mesh.local\ndir: certs/ca\n',
  });
  t.same(effectiveYamlView(await loadSidecarConfig(SIDECAR)), effectiveYamlView(await loadSidecarConfig(join(dir, 'required.yaml'))), 'sidecar: the same config as leaving every default out');
  const { file: _a, ...ca } = await loadCaConfig(CA);
  const { file: _b, ...minimal } = await loadCaConfig(join(dir, 'required-ca.yaml'));
  t.same(ca, minimal, 'CA: the same config as leaving every default out');
});

t.test('every key the readers accept is named', async (t) => {
  const sources = join(ROOT, 'src/config');
  const keysIn = async (files: string[]) => {
    const keys = new Set<string>();
    for (const file of files) {
      const text = await readFile(join(sources, file), 'utf8');
      for (const list of text.matchAll(/(?:\.map\(|const KEYS = |const \w*KEYS: readonly string\[\] = )\[([^\]]+)\]/g)) for (const key of (list[1] as string).matchAll(/'(\w+)'/g)) keys.add(key[1] as string);
    }
    return keys;
  };
  const caFile = 'ca-config.ts';
  const sidecarFiles = (await readdir(sources)).filter((f) => f.endsWith('.ts') && f !== caFile);
  for (const [example, keys] of [[SIDECAR, await keysIn(sidecarFiles)], [CA, await keysIn([caFile])]] as const) {
    const text = await readFile(example, 'utf8');
    t.ok(keys.size >= 9, `${example}: ${[...keys].join(', ')}`);
    for (const key of keys) t.match(text, new RegExp(`[\\s{,]${key}:`), `${example} names ${key}`);
  }
});
