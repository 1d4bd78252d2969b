import t from 'tap';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/issues.js';
import { checkConfigFile, loadConfigFile } from '../../src/config/load-any.js';

const SIDECAR = 'service: a\ntrustDomain: mesh.local\nidentity: {files: {cert: a, key: b, bundle: c}}\ninbound: {listen: "0.0.0.0:0", app: "http://127.0.0.1:8080"}\n';
const CA = 'trustDomain: mesh.local\ndir: certs/ca\n';

t.test('tells the kinds apart and loads either', async (t) => {
  const dir = t.testdir({ 'sidecar.yaml': SIDECAR, 'ca.yaml': CA });
  // (the files these configs name do not exist: check reports them, test/config/referenced-files.test.ts)
  t.equal((await checkConfigFile(join(dir, 'sidecar.yaml'))).kind, 'sidecar');
  t.equal((await checkConfigFile(join(dir, 'ca.yaml'))).kind, 'ca');
  const sidecar = await loadConfigFile(join(dir, 'sidecar.yaml'));
  t.equal(sidecar.kind, 'sidecar');
  t.equal(sidecar.kind === 'sidecar' && sidecar.config.spiffeId, 'spiffe://mesh.local/svc/a');
  const ca = await loadConfigFile(join(dir, 'ca.yaml'));
  t.equal(ca.kind === 'ca' && ca.config.trustDomain, 'mesh.local');
});

t.test('a CA config with a mistake is still checked as a CA config', async (t) => {
  const dir = t.testdir({ 'ca.yaml': 'trustDomain: mesh.local\nmaxTtl: 1x\nserverNames: [localhost]\n' });
  const result = await checkConfigFile(join(dir, 'ca.yaml'));
  t.equal(result.kind, 'ca');
  t.same(
    result.issues.map((i) => `${i.line}:${i.column} ${i.path}`),
    ['1:1 dir', '2:1 maxTtl'],
  );
});

t.test('a sidecar config with a stray CA key is a sidecar config', async (t) => {
  const dir = t.testdir({ 'c.yaml': `${SIDECAR}dir: x\n` });
  const result = await checkConfigFile(join(dir, 'c.yaml'));
  t.equal(result.kind, 'sidecar');
  t.match(result.issues, [{ line: 5, column: 1, path: 'dir', message: /^unknown key/ }]);
});

t.test('a missing file is one clear issue, and loading it throws ConfigError', async (t) => {
  const file = join(t.testdir({}), 'absent.yaml');
  t.same(await checkConfigFile(file), {
    kind: 'sidecar',
    issues: [{ file, line: 0, column: 0, path: '', message: 'cannot read the config file: no such file' }],
    warnings: [],
  });
  await t.rejects(loadConfigFile(file), ConfigError);
  await t.rejects(loadConfigFile(file), { code: 'config_invalid', message: `${file}: cannot read the config file: no such file` });
});
