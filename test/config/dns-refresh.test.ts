// outbound.dnsRefresh: how often dns:NAME:PORT endpoints are looked up again. Read, defaulted
// (left out: the outbound side's 5 s), refused when too short or not a duration, and a change
// of it on reload needs a restart (the lookup timers are made at start). Whether the sidecar
// really re-resolves at this rate is proved in test/e2e/multihost.test.ts against dnsmasq.

import t from 'tap';
import { basename, join } from 'node:path';
import { ConfigError, formatIssue } from '../../src/config/issues.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { planReload } from '../../src/config/reload-plan.js';

type TapTest = Parameters<Parameters<typeof t.test>[0]>[0];

function configText(dnsRefresh: string | undefined): string {
  return [
    'service: frontend',
    'trustDomain: mesh.local',
    'identity:',
    '  files: {cert: a.crt, key: a.key, bundle: b.pem}',
    'outbound:',
    '  listen: 127.0.0.1:0',
    ...(dnsRefresh === undefined ? [] : [`  dnsRefresh: ${dnsRefresh}`]),
    '  upstreams:',
    '    orders: {endpoints: ["dns:orders.mesh.test:15443"], identity: spiffe://mesh.local/svc/orders}',
    '',
  ].join('\n');
}

async function load(t: TapTest, dnsRefresh: string | undefined) {
  return loadSidecarConfig(join(t.testdir({ 'c.yaml': configText(dnsRefresh) }), 'c.yaml'));
}

async function issuesOf(t: TapTest, dnsRefresh: string): Promise<string[]> {
  const err = await load(t, dnsRefresh).then(() => undefined, (e: unknown) => e);
  if (!(err instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(err)}`);
  return err.issues.map((issue) => formatIssue({ ...issue, file: basename(issue.file) }));
}

t.test('a duration is read; left out, the key is absent (the outbound default applies)', async (t) => {
  t.equal((await load(t, '1s')).outbound?.dnsRefreshMs, 1000);
  t.equal((await load(t, '250ms')).outbound?.dnsRefreshMs, 250);
  const config = await load(t, undefined);
  t.notOk(config.outbound && 'dnsRefreshMs' in config.outbound, 'no key when not written');
});

t.test('too short or not a duration: one line naming the file, line and key', async (t) => {
  t.same(await issuesOf(t, '50ms'), ['c.yaml:7:3: outbound.dnsRefresh: "50ms" is too short: re-resolve at most every 100ms']);
  t.match((await issuesOf(t, 'often'))[0], /^c\.yaml:7:3: outbound\.dnsRefresh: .*duration/);
});

t.test('a changed dnsRefresh is reported as needing a restart; the running value is kept', async (t) => {
  const running = await load(t, '5s');
  const next = await load(t, '1s');
  const plan = planReload(running, next);
  t.same(plan.restartRequired, ['outbound.dnsRefresh']);
  t.equal(plan.effective.outbound?.dnsRefreshMs, 5000);
});
