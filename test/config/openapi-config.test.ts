// inbound.openapi and outbound.upstreams.<name>.openapi: read with defaults, mistakes named
// with file, line and key, and a change of spec or mode applied live by a reload.

import t from 'tap';
import { basename, join, resolve } from 'node:path';
import { ConfigError, formatIssue } from '../../src/config/issues.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { planReload } from '../../src/config/reload-plan.js';

const config = (inbound: string, upstream = '') => `service: orders
trustDomain: mesh.local
identity:
  files: {cert: c.pem, key: k.pem, bundle: b.pem}
inbound:
  listen: 127.0.0.1:0
  app: http://127.0.0.1:8080
${inbound}
outbound:
  listen: 127.0.0.1:0
  upstreams:
    payments:
      endpoints: [127.0.0.1:16443]
      identity: spiffe://mesh.local/svc/payments
${upstream}
`;

t.test('the keys are read, with shadow and 1 MiB as defaults, and the spec path made absolute', async (t) => {
  const dir = t.testdir({
    'c.yaml': config('  openapi: {spec: config/orders.openapi.yaml}', '      openapi: {spec: payments.yaml, mode: enforce, maxBodySize: 64KiB}'),
  });
  const loaded = await loadSidecarConfig(join(dir, 'c.yaml'));
  t.same(loaded.inbound?.openapi, { spec: resolve('config/orders.openapi.yaml'), mode: 'shadow', maxBodySize: 1024 * 1024, maxBuffered: 64 * 1024 * 1024 });
  t.same(loaded.outbound?.upstreams[0]?.openapi, { spec: resolve('payments.yaml'), mode: 'enforce', maxBodySize: 64 * 1024, maxBuffered: 64 * 1024 * 1024 });
});

t.test('maxBuffered: a size up to 4GiB, at least maxBodySize', async (t) => {
  const dir = t.testdir({
    'ok.yaml': config('  openapi: {spec: o.yaml, maxBodySize: 1MiB, maxBuffered: 2GiB}', '      openapi: {spec: p.yaml}'),
    'small.yaml': config('  openapi: {spec: o.yaml, maxBodySize: 1MiB, maxBuffered: 512KiB}', '      openapi: {spec: p.yaml}'),
    'huge.yaml': config('  openapi: {spec: o.yaml, maxBuffered: 5GiB}', '      openapi: {spec: p.yaml}'),
  });
  t.equal((await loadSidecarConfig(join(dir, 'ok.yaml'))).inbound?.openapi?.maxBuffered, 2 * 1024 ** 3);
  for (const [file, message] of [
    ['small.yaml', 'inbound.openapi.maxBuffered: maxBuffered (524288 bytes) must be at least maxBodySize (1048576 bytes): one whole body must fit'],
    ['huge.yaml', 'inbound.openapi.maxBuffered: "5GiB" must be a whole number of bytes from 0 to 4GiB'],
  ]) {
    const err = await loadSidecarConfig(join(dir, file as string)).then(() => undefined, (e: unknown) => e);
    t.type(err, ConfigError);
    t.match((err as ConfigError).issues.map((i) => formatIssue({ ...i, file: basename(i.file) })).join('\n'), message);
  }
});

t.test('mistakes name the file, line and key', async (t) => {
  const dir = t.testdir({
    'c.yaml': config('  openapi:\n    spec: o.yaml\n    mode: enforcing\n    maxBodySize: 2XB\n    strict: true', '      openapi: {mode: shadow}'),
  });
  const err = await loadSidecarConfig(join(dir, 'c.yaml')).then(() => undefined, (e: unknown) => e);
  t.type(err, ConfigError);
  const lines = (err as ConfigError).issues.map((i) => formatIssue({ ...i, file: basename(i.file) }));
  t.same(lines, [
    'c.yaml:10:5: inbound.openapi.mode: "enforcing" is not a mode: write shadow (count and log, forward) or enforce (refuse)',
    'c.yaml:11:5: inbound.openapi.maxBodySize: "2XB" is not a size (write 65536, 64KiB or 1MiB)',
    'c.yaml:12:5: inbound.openapi.strict: unknown key; allowed here: spec, mode, maxBodySize, maxBuffered',
    'c.yaml:19:7: outbound.upstreams.payments.openapi.spec: required key is missing',
  ]);
});

t.test('a reload applies a new spec or mode live', async (t) => {
  const dir = t.testdir({
    'a.yaml': config('  openapi: {spec: a.yaml, mode: shadow}'),
    'b.yaml': config('  openapi: {spec: b.yaml, mode: enforce}'),
  });
  const [a, b] = await Promise.all([loadSidecarConfig(join(dir, 'a.yaml')), loadSidecarConfig(join(dir, 'b.yaml'))]);
  const plan = planReload(a, b);
  t.same(plan.effective.inbound?.openapi, b.inbound?.openapi);
  t.same(plan.applied, ['inbound.openapi.spec', 'inbound.openapi.mode']);
  t.same(plan.restartRequired, []);
});
