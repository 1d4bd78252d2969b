// The README's alert rules (Rotating the CA: "Alert before anything expires") loaded into a real
// Prometheus that scrapes two `ca serve` on one CA folder (a supported set-up: an overlapping
// restart, or a second port) and a sidecar. Every CA server exports the folder's roots, so
// a rule that counts root series counts each root once per CA server: quiet, the rules must
// not alert; during a root rotation, the stalled-rotation rule must, and the bundle rule must
// stop once the sidecar trusts both roots. Also: the Grafana dashboard's job and instance
// variables, with a CA in the same Prometheus, list the sidecar only.

import t from 'tap';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { startEchoApp, type TestApp } from '../helpers/apps.js';
import { execFileAsync } from '../helpers/ca.js';
import { startMeshcar, type MeshcarProcess } from '../helpers/process.js';
import { launchPrometheus, readmeAlertRules, type Prometheus } from '../helpers/prometheus.js';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

let ca: MeshCa;
let secondCa: MeshcarProcess;
let app: TestApp;
let orders: RunningSidecar;
let prometheus: Prometheus;

interface PromAlert {
  readonly labels: Record<string, string>;
  readonly state: string;
}

async function alerts(): Promise<PromAlert[]> {
  const res = await fetch(`http://127.0.0.1:${prometheus.port()}/api/v1/alerts`, { signal: AbortSignal.timeout(5000) });
  return ((await res.json()) as { data: { alerts: PromAlert[] } }).data.alerts;
}

/** When the rule group last ran (ms since the epoch). */
async function lastEvaluation(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${prometheus.port()}/api/v1/rules`, { signal: AbortSignal.timeout(5000) });
  const groups = ((await res.json()) as { data: { groups: Array<{ name: string; lastEvaluation: string }> } }).data.groups;
  return Date.parse(groups.find((g) => g.name === 'meshcar-ca')?.lastEvaluation ?? '') || 0;
}

/** Waits for two evaluations of the rules that began after now: what they say reflects what is scraped now. */
async function evaluatedAgain(): Promise<void> {
  const from = Date.now();
  let last = 0;
  await prometheus.eventually('an evaluation of the rules', async () => (last = await lastEvaluation()) > from + 1000, () => new Date(last).toISOString());
}

const names = (list: PromAlert[]) => list.map((a) => `${a.labels.alertname}${a.labels.instance ? ` (${a.labels.instance})` : ''} ${a.state}`);

t.before(async () => {
  const dir = t.testdir();
  const promDir = join(dir, 'prometheus');
  await mkdir(promDir, { recursive: true });
  ca = await startMeshCa(dir);
  // a second CA server on the same folder, on a port of its own
  const secondConfig = join(dir, 'ca-second.yaml');
  await writeFile(secondConfig, `trustDomain: mesh.local\ndir: ${ca.caDir}\nlisten: 127.0.0.1:0\nlog: {level: info}\n`);
  secondCa = startMeshcar(['ca', 'serve', '--config', secondConfig]);
  const secondUrl = String((await secondCa.waitFor((line) => line.msg === 'CA server listening', 15_000)).url);
  app = await startEchoApp();
  orders = await startSidecar(ca, { service: 'orders', inbound: { app: `http://127.0.0.1:${app.port}` }, bundleRefresh: '500ms' });

  const rulesFile = join(promDir, 'rules.yml');
  await writeFile(rulesFile, await readmeAlertRules());
  const caTargets = [ca.url, secondUrl].map((url) => `'${new URL(url).host}'`).join(', ');
  prometheus = await launchPrometheus(
    promDir,
    [
      `rule_files: ['${rulesFile}']`,
      'scrape_configs:',
      '  - job_name: meshcar',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${orders.adminPort}']`,
      '  - job_name: meshcar-ca',
      '    scheme: https',
      `    tls_config: {ca_file: '${ca.bundlePath}', server_name: localhost}`,
      '    static_configs:',
      `      - targets: [${caTargets}]`,
      '',
    ].join('\n'),
  );
  await prometheus.ready();
  let up: string[] = [];
  await prometheus.eventually(
    'the two CA servers and the sidecar scraped',
    async () => {
      up = (await prometheus.vector('up == 1')).map((s) => `${s.metric.job} ${s.metric.instance}`);
      const roots = await prometheus.vector('meshcar_ca_root_expiry_timestamp_seconds');
      const trusted = await prometheus.vector('meshcar_identity_bundle_roots');
      return up.length === 3 && roots.length === 2 && trusted.length === 1;
    },
    () => up.join(', '),
  );
});

t.teardown(async () => {
  await prometheus?.stop();
  await orders?.stop();
  await secondCa?.stop();
  await ca?.stop();
  await app?.close();
});

t.test('one root, two CA servers: no rule alerts', async (t) => {
  await evaluatedAgain();
  const now = await alerts();
  t.same(names(now), [], 'no alert pending or firing');
});

t.test('a root rotation under way: the stalled-rotation rule pends; the bundle rule stops once the sidecar trusts both roots', async (t) => {
  await execFileAsync(process.execPath, [CLI, 'ca', 'root', 'add', '--dir', ca.caDir]);
  let seen: PromAlert[] = [];
  await prometheus.eventually(
    'MeshcarRootRotationStalled pending',
    async () => (seen = await alerts()).some((a) => a.labels.alertname === 'MeshcarRootRotationStalled'),
    () => names(seen).join(', '),
  );
  await prometheus.eventually(
    'the sidecar trusting two roots, scraped',
    async () => (await prometheus.vector('meshcar_identity_bundle_roots == 2')).length === 1,
    () => 'meshcar_identity_bundle_roots below 2',
  );
  await evaluatedAgain();
  const now = await alerts();
  t.same(names(now), ['MeshcarRootRotationStalled pending'], 'the rotation, and nothing else');
});

// The Grafana dashboard's job and instance variables choose among sidecars: with a CA scraped by
// the same Prometheus (as above), neither lists the CA (it exports meshcar_build_info too, which
// they were read from).
t.test('the dashboard lists sidecars, not the CA, in its job and instance variables', async (t) => {
  const dashboard = JSON.parse(await readFile(new URL('../../config/grafana-dashboard.json', import.meta.url), 'utf8')) as { templating: { list: Array<{ name: string; definition?: string; allValue?: string }> } };
  // "All" jobs is the jobs listed, not `.*`, which would put the CA's process in the CPU and memory panels
  t.equal(dashboard.templating.list.find((v) => v.name === 'job')?.allValue, undefined, '$job: All is the jobs it lists');
  for (const [name, label, expected] of [
    ['job', 'job', ['meshcar']],
    ['instance', 'instance', [`127.0.0.1:${orders.adminPort}`]],
  ] as const) {
    const definition = dashboard.templating.list.find((v) => v.name === name)?.definition ?? '';
    const metric = /^label_values\((.+),\s*\w+\)$/.exec(definition)?.[1] ?? '';
    t.ok(metric, `$${name} is a label_values() query: ${definition}`);
    const values = (await prometheus.vector(`group by (${label}) (${metric.replace(/\$\w+/g, '.*')})`)).map((s) => s.metric[label]);
    t.same(values.sort(), [...expected], `$${name}: ${definition}`);
  }
});
