// config/kubernetes, checked offline: every manifest file and every rendered kustomization
// (base, variants/files, prometheus-operator, network-policy) validates against the Kubernetes schemas
// (kubernetes-models, and @kubernetes-models/prometheus-operator for PodMonitor) and, through
// the same packages' TypeScript interfaces and tsc, names no unknown field; the offline
// rendering agrees with `kubectl kustomize` where kubectl exists; and the cross-references hold
// (test/helpers/kube-sidecars.ts): each sidecar's own config passes `meshcar check` with the files
// it names put where its volumes mount them, and ports, probes, volumes, env, drain timing,
// Prometheus, discovery and identities all agree with it; and no pod mounts an API token.

import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { ConfigMap, PersistentVolumeClaim, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { normalized, podSpec, readDocuments, renderKustomization, type KubeObject } from '../helpers/kustomize.js';
import { checkCa, checkCaPodMonitor, checkDiscovery, checkNoApiToken, checkPodMonitor, checkSelectors, checkSidecarPod, removeTempFiles, sidecarConfig, sidecarPods } from '../helpers/kube-sidecars.js';

const ROOT = new URL('../../config/kubernetes/', import.meta.url).pathname;
const REPO = new URL('../../', import.meta.url).pathname;
const KUSTOMIZATIONS = ['base', 'variants/files', 'prometheus-operator', 'network-policy'];

t.teardown(removeTempFiles);

// every kind the manifests use, with its schema
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
};

// the same kinds as TypeScript interfaces: the compiler's excess-property check finds misspelt
// field names, which the JSON schemas (open to unknown fields) let through
const TYPES: Record<string, [string, string]> = {
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  'v1/Service': ['kubernetes-models/v1/Service', 'IService'],
  'v1/ServiceAccount': ['kubernetes-models/v1/ServiceAccount', 'IServiceAccount'],
  'v1/PersistentVolumeClaim': ['kubernetes-models/v1/PersistentVolumeClaim', 'IPersistentVolumeClaim'],
  'apps/v1/Deployment': ['kubernetes-models/apps/v1/Deployment', 'IDeployment'],
  'networking.k8s.io/v1/NetworkPolicy': ['kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'INetworkPolicy'],
  'monitoring.coreos.com/v1/PodMonitor': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor', 'IPodMonitor'],
};

/** tsc's complaints about field names (and types) of these objects, one per line; [] when none. */
async function unknownFields(objects: ReadonlyArray<{ label: string; object: KubeObject }>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'meshcar-kube-types-'));
  try {
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    const imports = Object.values(TYPES).map(([module, type]) => `import type { ${type} } from '${module}';`);
    const lines = objects.map(({ object }, i) => {
      const [, type] = TYPES[`${object.apiVersion}/${object.kind}`] ?? ['', 'never'];
      return `export const o${i}: ${type} = ${JSON.stringify(object)};`;
    });
    writeFileSync(join(dir, 'manifests.ts'), [...imports, ...lines].join('\n'));
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', 'manifests.ts'];
    const out = await promisify(execFile)(process.execPath, args, { cwd: dir }).then(() => '', (err: { stdout: string }) => err.stdout);
    // manifests.ts(LINE,COL): error ...: name the object instead of the generated line
    return out.split('\n').filter(Boolean).map((line) => {
      const m = /^manifests\.ts\((\d+),\d+\): error TS\d+: (.*)$/.exec(line);
      return m ? `${objects[Number(m[1]) - imports.length - 1]?.label ?? '?'}: ${m[2]}` : line;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Why the object does not validate, or undefined when it does. */
function schemaError(o: KubeObject): string | undefined {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) return `no schema known here for ${o.apiVersion} ${o.kind}`;
  try {
    new Model(o as never).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : []));
}

t.test('the schema check itself refuses a broken manifest', async (t) => {
  const broken = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'c', ports: [{ containerPort: 'mesh' }] }] } } } } as unknown as KubeObject;
  t.match(schemaError(broken), /containerPort must be integer/);
  t.match(schemaError({ ...broken, kind: 'Deploymnet' }), /no schema known/);
});

t.test('every manifest file is used by a kustomization, and every resource file validates', async (t) => {
  const used = new Set<string>();
  for (const name of KUSTOMIZATIONS) {
    const dir = join(ROOT, name);
    used.add(join(dir, 'kustomization.yaml'));
    const k = readDocuments(join(dir, 'kustomization.yaml'))[0] as { resources?: string[]; patches?: Array<{ path?: string }> };
    for (const r of k.resources ?? []) if (r.endsWith('.yaml')) used.add(join(dir, r));
    for (const p of k.patches ?? []) if (p.path) used.add(join(dir, p.path));
    // resource files stand alone: each object validates as written (patches only once applied, below)
    for (const r of (k.resources ?? []).filter((r) => r.endsWith('.yaml'))) {
      for (const o of readDocuments(join(dir, r)) as KubeObject[]) t.equal(schemaError(o), undefined, `${name}/${r}: ${o.kind}/${o.metadata.name}`);
    }
  }
  t.same(yamlFiles(ROOT).filter((f) => !used.has(f)).map((f) => relative(ROOT, f)), [], 'no YAML file outside a kustomization');
});

const rendered = new Map(KUSTOMIZATIONS.map((name) => [name, renderKustomization(join(ROOT, name))] as const));

t.test('no field name is unknown to the Kubernetes types (every rendered object)', async (t) => {
  const objects = [...rendered].flatMap(([name, list]) => list.map((object) => ({ label: `${name}: ${object.kind}/${object.metadata.name}`, object })));
  // one compiler run (seconds) for the manifests and a misspelt object that proves the check bites
  const typo = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { clusterIp: 'None' } } as unknown as KubeObject;
  t.equal(schemaError(typo), undefined, 'a misspelt field passes the JSON schema');
  const complaints = await unknownFields([...objects, { label: 'misspelt', object: typo }]);
  t.match(complaints.filter((c) => c.startsWith('misspelt: ')).join('\n'), /clusterIp.* does not exist in type 'IServiceSpec'/, 'but not the typed check');
  t.same(complaints.filter((c) => !c.startsWith('misspelt: ')), [], `none in the ${objects.length} objects of config/kubernetes`);
});

t.test('every rendered kustomization validates', async (t) => {
  for (const [name, objects] of rendered) {
    t.ok(objects.length > 0, `${name} renders objects`);
    for (const o of objects) t.equal(schemaError(o), undefined, `${name}: ${o.kind}/${o.metadata.name}`);
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    t.same(ids.filter((id, i) => ids.indexOf(id) !== i), [], `${name}: no object twice`);
  }
});

const kubectl = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'kubectl is not installed: the offline rendering is not compared with kustomize itself';
  }
})();

t.test('kubectl kustomize renders the same objects', { skip: kubectl ?? false }, async (t) => {
  for (const [name, objects] of rendered) {
    const out = execFileSync('kubectl', ['kustomize', join(ROOT, name)], { encoding: 'utf8' });
    const theirs = (await import('yaml')).parseAllDocuments(out).map((d) => d.toJS() as KubeObject);
    t.same(normalized(objects), normalized(theirs), `${name}: the same objects as kubectl kustomize`);
  }
});

const base = rendered.get('base') as KubeObject[];
const files = rendered.get('variants/files') as KubeObject[];

t.test('base: each sidecar\'s config passes meshcar check and agrees with its pod', async (t) => {
  const pods = sidecarPods(base);
  t.same(pods.map((p) => p.metadata.name).sort(), ['frontend', 'orders']);
  for (const pod of pods) await t.test(pod.metadata.name, (t) => checkSidecarPod(t, base, pod));
});

t.test('files variant: each sidecar reads the files spiffe-helper writes, and passes meshcar check', async (t) => {
  t.notOk(files.some((o) => o.metadata.name.startsWith('meshcar-ca')), 'no meshcar CA in the files variant');
  const pods = sidecarPods(files);
  t.same(pods.map((p) => p.metadata.name).sort(), ['frontend', 'orders']);
  for (const pod of pods) await t.test(pod.metadata.name, (t) => checkSidecarPod(t, files, pod));
});

t.test('discovery: callers reach orders through its headless Service, with the identity it has', async (t) => {
  await checkDiscovery(t, base);
  await checkDiscovery(t, files);
});

t.test('the CA: one replica, its folder on the claim, its Service name in its certificate, meshcar check', (t) => checkCa(t, base));

t.test('selectors: each Deployment\'s matches its pods, each Service selects one Deployment\'s', async (t) => {
  checkSelectors(t, base);
  checkSelectors(t, files);
});

t.test('no Service reaches a sidecar\'s admin port (probes and scrapes go to the pod itself)', async (t) => {
  for (const [name, objects] of rendered) {
    for (const svc of objects.filter((o) => o.kind === 'Service') as Array<KubeObject & { spec: { ports: Array<{ port: number; targetPort?: string | number }> } }>) {
      const admin = svc.spec.ports.filter((p) => p.targetPort === 'admin' || p.port === 15000 || p.targetPort === 15000);
      t.same(admin, [], `${name}: Service ${svc.metadata.name} has no admin port`);
    }
  }
});

t.test('no pod mounts a Kubernetes API token', async (t) => {
  checkNoApiToken(t, base);
  checkNoApiToken(t, files);
});

t.test('the PodMonitors scrape the admin port of every pod with a sidecar, and the CA over HTTPS', async (t) => {
  checkPodMonitor(t, rendered.get('prometheus-operator') as KubeObject[], base);
  checkPodMonitor(t, rendered.get('prometheus-operator') as KubeObject[], files);
  checkCaPodMonitor(t, rendered.get('prometheus-operator') as KubeObject[], base);
});

t.test('a preStop sleep action in the manifests: the README says which Kubernetes it needs', async (t) => {
  const containers = [...rendered.values()].flat().flatMap((o) => (podSpec(o)?.containers ?? []) as Array<{ lifecycle?: { preStop?: { sleep?: unknown } } }>);
  const sleeps = containers.filter((c) => c.lifecycle?.preStop?.sleep !== undefined);
  t.ok(sleeps.length > 0, `${sleeps.length} containers pause with preStop sleep`);
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Kubernetes'), readme.indexOf('\n## ', readme.indexOf('\n## Kubernetes') + 5));
  t.match(section.replace(/\s+/g, ' '), /`preStop` `sleep` action needs Kubernetes 1\.30 or later; on 1\.29 it is alpha, behind the `PodLifecycleSleepAction` feature gate/);
});

t.test('the README\'s Kubernetes section names the endpoints as the manifests do, absolute (trailing dot)', async (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Kubernetes');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
  const named = [...section.matchAll(/dns:[a-z0-9.-]+:\d+/g)].map((m) => m[0]);
  t.ok(named.length > 0, 'the section names a dns: endpoint');
  t.same(named.filter((e) => !/\.:\d+$/.test(e)), [], 'none without its trailing dot');
  const inManifests = sidecarPods(base).flatMap((pod) => Object.values((sidecarConfig(base, pod).config.outbound?.upstreams ?? {}) as Record<string, { endpoints: string[] }>).flatMap((u) => u.endpoints));
  t.ok(named.every((e) => inManifests.includes(e)), `${named.join(', ')}: the base's own`);
});

t.test('the README\'s figures for the orders sidecar are the manifests\' (timings, resources)', async (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8').replace(/\s+/g, ' ');
  const said = (re: RegExp) => re.exec(readme)?.slice(1);
  const orders = sidecarPods(base).find((p) => p.metadata.name === 'orders') as KubeObject;
  const spec = podSpec(orders) as { terminationGracePeriodSeconds: number; containers: Array<{ name: string; lifecycle?: { preStop?: { sleep?: { seconds: number } } }; resources: { requests: Record<string, string>; limits: Record<string, string> } }> };
  const meshcar = spec.containers.find((c) => c.name === 'meshcar');
  const app = spec.containers.find((c) => c.name === 'app');
  const drain = sidecarConfig(base, orders).config.drainTimeout as string;
  t.same(said(/- shutdown: a `preStop` pause of (\d+) s .*?\(`drainTimeout: (\w+)`\); the app's own `preStop` pause \((\d+) s\) .*?`terminationGracePeriodSeconds: (\d+)`/), [String(meshcar?.lifecycle?.preStop?.sleep?.seconds), drain, String(app?.lifecycle?.preStop?.sleep?.seconds), String(spec.terminationGracePeriodSeconds)], 'preStop pauses, drain and grace period');
  const r = meshcar?.resources;
  t.same(said(/\): requests `cpu: (\w+)` .*?and `memory: (\w+)` .*?limits `cpu: "?(\w+)"?` and `memory: (\w+)`;/), [r?.requests.cpu, r?.requests.memory, r?.limits.cpu, r?.limits.memory], 'requests and limits');
});
