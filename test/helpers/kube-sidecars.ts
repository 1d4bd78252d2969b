// Test helper for test/deploy/kubernetes.test.ts: the cross-references between a rendered set
// of Kubernetes objects and meshcar's own configs inside them. A sidecar's config (from its
// ConfigMap) is run through `meshcar check` with every file it names put
// under a temporary root at the path its pod mounts there, so a path no volume provides, a
// wrong Secret or ConfigMap key, or a config error fails; ports, probes, drain timing,
// Prometheus annotations, security settings and the image are compared with the config too.

import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type tap from 'tap';
import { parse } from 'yaml';
import { parseDuration } from '../../src/config/duration.js';
import { caInit, caIssue, caToken, writeTokenFile } from '../../src/ca/commands.js';
import { podSpec, type KubeObject } from './kustomize.js';

const execFileAsync = promisify(execFile);
const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const VERSION = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** The uid the Dockerfile's USER gives the image. */
const IMAGE_UID = 1000;

type Tap = Parameters<Parameters<typeof tap.test>[0]>[0];
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- manifests are checked field by field

/** Deployments with a meshcar container that runs a sidecar (not the CA). */
export function sidecarPods(objects: readonly KubeObject[]): KubeObject[] {
  return objects.filter((o) => o.kind === 'Deployment' && meshcarContainer(o) !== undefined);
}

function meshcarContainer(o: KubeObject): Obj | undefined {
  const c = ((podSpec(o)?.containers ?? []) as Obj[]).find((c) => c.name === 'meshcar');
  return c && [...(c.command ?? []), ...(c.args ?? [])].join(' ').includes('run --config') ? c : undefined;
}

function find(objects: readonly KubeObject[], kind: string, name: string): Obj | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

/** The sidecar config of a pod, as text and parsed. */
export function sidecarConfig(objects: readonly KubeObject[], pod: KubeObject): { text: string; config: Obj } {
  const spec = podSpec(pod) as Obj;
  const volume = (spec.volumes as Obj[]).find((v) => v.name === 'meshcar-config');
  const text = String(find(objects, 'ConfigMap', volume?.configMap?.name)?.data?.['meshcar.yaml'] ?? '');
  return { text, config: parse(text) as Obj };
}

let workRoot: Promise<string> | undefined;
/** A fresh folder for one check, under one temporary root that removeTempFiles() deletes. */
async function scratch(name: string): Promise<string> {
  workRoot ??= mkdtemp(join(tmpdir(), 'meshcar-kube-'));
  return mkdtemp(join(await workRoot, `${name}-`));
}

/** Deletes every file the checks wrote (call from t.teardown). */
export async function removeTempFiles(): Promise<void> {
  if (workRoot) await rm(await workRoot, { recursive: true, force: true });
  workRoot = undefined;
  materials = undefined;
}

let materials: Promise<string> | undefined;
/** A real CA folder, with tokens and offline SVIDs for the example services. */
function caMaterials(): Promise<string> {
  materials ??= (async () => {
    const dir = await scratch('ca');
    // made here by the functions `ca init`, `ca token` and `ca issue` call: a process each cost ~0.2 s of CPU
    await caInit(join(dir, 'ca'), 'mesh.local', false);
    await Promise.all(['orders', 'frontend'].flatMap((service) => [
      caToken(join(dir, 'ca'), service, 3_600_000, false).then((token) => writeTokenFile(join(dir, `${service}.token`), token)),
      caIssue(join(dir, 'ca'), service, join(dir, `svid-${service}`), 86_400_000),
    ]));
    return dir;
  })();
  return materials;
}

/** The mount of `container` that holds `path` (longest mountPath), and its volume. */
function mountOf(spec: Obj, container: Obj, path: string): { mount: Obj; volume: Obj } | undefined {
  const mount = ((container.volumeMounts ?? []) as Obj[]).filter((m) => path.startsWith(`${m.mountPath}/`)).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const volume = mount && (spec.volumes as Obj[]).find((v) => v.name === mount.name);
  return mount && volume ? { mount, volume } : undefined;
}

function portNamed(container: Obj, name: string): number | undefined {
  return ((container.ports ?? []) as Obj[]).find((p) => p.name === name)?.containerPort;
}

export async function checkSidecarPod(t: Tap, objects: readonly KubeObject[], pod: KubeObject): Promise<void> {
  const spec = podSpec(pod) as Obj;
  const meshcar = meshcarContainer(pod) as Obj;
  const others = (spec.containers as Obj[]).filter((c) => c !== meshcar);
  const { text, config } = sidecarConfig(objects, pod);
  t.equal(config.service, pod.metadata.name, 'the config is this service\'s');
  const command = [...(meshcar.command ?? []), ...(meshcar.args ?? [])].join(' ');
  t.ok(command.includes('/etc/meshcar/config/meshcar.yaml') && mountOf(spec, meshcar, '/etc/meshcar/config/meshcar.yaml')?.volume.configMap, 'the container reads the config from its ConfigMap volume');
  // a copy made at start (sed into an emptyDir) is what a reload would read again: never the ConfigMap's changes
  t.same(meshcar.command ?? ['meshcar'], ['meshcar'], 'the image\'s entrypoint, no shell that could copy the config first');
  t.same(meshcar.args, ['run', '--config', '/etc/meshcar/config/meshcar.yaml'], 'run --config on the ConfigMap\'s file itself, so a reload sees ConfigMap changes');
  t.notOk(text.includes('${'), 'no placeholder in the config: the file runs as mounted');

  // every file the config names, put where its volume is mounted; then meshcar check
  const root = await scratch(pod.metadata.name);
  const ca = await caMaterials();
  const identity = config.identity as Obj;
  const sources: Array<[string | undefined, string, (v: Obj) => boolean, string]> = identity.ca
    ? [
        [identity.ca.bundle, join(ca, 'ca', 'bundle.pem'), (v) => v.configMap?.name === 'meshcar-ca-bundle' && basename(identity.ca.bundle) === 'bundle.pem', 'ConfigMap meshcar-ca-bundle, key bundle.pem'],
        [identity.ca.token, join(ca, `${config.service}.token`), (v) => v.secret?.secretName === `${config.service}-join-token` && basename(identity.ca.token) === 'token', `Secret ${config.service}-join-token, key token`],
      ]
    : ['cert', 'key', 'bundle'].map((k) => [identity.files[k], join(ca, `svid-${config.service}`, { cert: 'svid.crt', key: 'svid.key', bundle: 'bundle.pem' }[k] as string), (v: Obj) => v.emptyDir !== undefined && sharedWithHelper(objects, spec, v.name, identity.files[k]), 'spiffe-helper\'s output volume']);
  let checked = text;
  for (const [path, source, rightVolume, what] of sources) {
    const where = path === undefined ? undefined : mountOf(spec, meshcar, path);
    t.ok(where && rightVolume(where.volume), `${path} comes from ${what}`);
    await mkdir(dirname(join(root, path as string)), { recursive: true });
    await copyFile(source, join(root, path as string));
    checked = checked.replaceAll(path as string, join(root, path as string));
  }
  if (identity.ca?.token) {
    // the token lets anyone holding it join as this service: read-only, 0440 at most (kubelet
    // makes secret files root's, group fsGroup: 0400 would lock uid 1000 out), never in env
    const where = mountOf(spec, meshcar, identity.ca.token);
    const mode = where?.volume.secret?.defaultMode as number | undefined;
    t.ok(where?.mount.readOnly === true && mode !== undefined && (mode & ~0o440) === 0, `the join token's Secret is mounted read-only, mode ${mode?.toString(8)} (0440 at most)`);
    t.equal(spec.securityContext?.fsGroup, spec.securityContext?.runAsGroup, 'fsGroup is the group meshcar runs as, so it reads the 0440 file');
  }
  const secretEnv = ([...(spec.initContainers ?? []), ...spec.containers] as Obj[]).flatMap((c) => [...((c.env ?? []) as Obj[]).filter((e) => e.valueFrom?.secretKeyRef), ...((c.envFrom ?? []) as Obj[]).filter((e) => e.secretRef)].map(() => c.name));
  t.same(secretEnv, [], 'no Secret in any container\'s environment');
  if (identity.dir) {
    const where = mountOf(spec, meshcar, `${identity.dir}/svid.crt`);
    t.ok(where?.volume.emptyDir && !where.mount.readOnly, `identity.dir ${identity.dir} is a writable emptyDir`);
    await mkdir(join(root, identity.dir), { recursive: true });
    checked = checked.replaceAll(identity.dir, join(root, identity.dir));
  }
  await writeFile(join(root, 'meshcar.yaml'), checked);
  const result = await execFileAsync(process.execPath, [CLI, 'check', '--config', join(root, 'meshcar.yaml')]).catch((err: { stdout: string; stderr: string }) => err);
  t.match(`${result.stdout}${result.stderr}`, /valid sidecar configuration/, `meshcar check accepts ${pod.metadata.name}'s config: ${result.stderr}`);
  // a shipped config that warns at every start teaches users to ignore warnings
  t.notMatch(result.stderr, /warning/, `meshcar check has no warning for ${pod.metadata.name}'s config`);

  // listeners, probes, Prometheus
  const [adminHost, adminPort] = splitListen(config.admin.listen);
  t.equal(adminHost, '0.0.0.0', 'admin listens on the pod address too (probes and scrapes come from outside the pod)');
  t.equal(portNamed(meshcar, 'admin'), adminPort, 'container port "admin" is admin.listen\'s');
  t.same([meshcar.readinessProbe?.httpGet, meshcar.livenessProbe?.httpGet], [{ path: '/ready', port: 'admin' }, { path: '/healthz', port: 'admin' }], 'readiness on /ready, liveness on /healthz, both on the admin port');
  probeTolerates(t, meshcar.readinessProbe, `${pod.metadata.name}'s readiness probe`);
  const annotations = (pod.spec as Obj).template.metadata.annotations as Obj;
  t.same([annotations['prometheus.io/scrape'], Number(annotations['prometheus.io/port']), annotations['prometheus.io/path']], ['true', adminPort, '/metrics'], 'scrape annotations name the admin port and /metrics');
  t.equal((pod.spec as Obj).template.metadata.labels['meshcar.io/sidecar'], 'true', 'labelled for the PodMonitor');
  if (config.outbound) {
    // the outbound sends as this pod's identity to whoever asks: another pod reaching it would
    // call orders as frontend, so it takes the app's connections only, over loopback
    t.equal(splitListen(config.outbound.listen)[0], '127.0.0.1', 'the outbound listens on loopback only: other pods must not borrow this identity');
    t.notOk(portNamed(meshcar, 'outbound') ?? ((meshcar.ports ?? []) as Obj[]).some((p) => p.containerPort === splitListen(config.outbound.listen)[1]), 'and no container port advertises it');
  }
  if (config.inbound) {
    const [host, port] = splitListen(config.inbound.listen);
    t.equal(host, '0.0.0.0', 'inbound listens on every address of the pod (no pod IP to fill in at start)');
    t.equal(portNamed(meshcar, 'mesh'), port, 'container port "mesh" is inbound.listen\'s');
    const appPort = splitListen((config.inbound.app as string).replace(/^\w+:\/\//, ''))[1];
    t.ok(others.some((c) => [...(c.command ?? []), ...(c.args ?? [])].join(' ').includes(`127.0.0.1:${appPort}`)), `an app container listens on 127.0.0.1:${appPort} (inbound.app)`);
  }

  // shutdown: the grace period covers the preStop pause and the drain; the app outlives the drain
  const drainMs = parseDuration(config.drainTimeout ?? '10s') as number;
  const pause = (c: Obj) => Number(c.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
  t.ok(spec.terminationGracePeriodSeconds * 1000 > pause(meshcar) + drainMs, `grace ${spec.terminationGracePeriodSeconds}s > preStop ${pause(meshcar) / 1000}s + drain ${drainMs / 1000}s`);
  if (config.inbound) t.ok(others.every((c) => c.name !== 'app' || pause(c) >= pause(meshcar) + drainMs), 'the app answers until the drain is over');

  // non-root, read-only root filesystem, sized, the image make image builds
  t.same([spec.securityContext?.runAsNonRoot, spec.securityContext?.runAsUser], [true, IMAGE_UID], `runs as non-root uid ${IMAGE_UID} (the image's user)`);
  for (const c of [...(spec.initContainers ?? []), ...spec.containers] as Obj[]) {
    t.same([c.securityContext?.readOnlyRootFilesystem, c.securityContext?.allowPrivilegeEscalation], [true, false], `${c.name}: read-only root filesystem, no privilege escalation`);
    t.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.cpu && c.resources?.limits?.memory, `${c.name}: CPU and memory requests and limits`);
  }
  t.equal(meshcar.image, `meshcar:${VERSION}`, 'the image make image builds');
}

/** Whether the spiffe-helper containers mount volume `name` where it writes `path` (its cert_dir and file names). */
function sharedWithHelper(objects: readonly KubeObject[], spec: Obj, name: string, path: string): boolean {
  const conf = String(find(objects, 'ConfigMap', 'spiffe-helper')?.data?.['helper.conf'] ?? '');
  const setting = (key: string) => new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, 'm').exec(conf)?.[1];
  const names = [setting('svid_file_name'), setting('svid_key_file_name'), setting('svid_bundle_file_name')];
  const helpers = [...(spec.initContainers ?? []), ...spec.containers].filter((c: Obj) => String(c.image).startsWith('spiffe-helper')) as Obj[];
  return setting('cert_dir') === dirname(path) && names.includes(basename(path)) && helpers.length === 2 && helpers.every((c) => (c.volumeMounts as Obj[]).some((m) => m.name === name && m.mountPath === dirname(path) && !m.readOnly));
}

function splitListen(text: string): [string, number] {
  const colon = text.lastIndexOf(':');
  return [text.slice(0, colon).replace(/^\[|\]$/g, ''), Number(text.slice(colon + 1))];
}

/**
 * Each upstream's dns:NAME:PORT is a headless Service of this namespace whose pods' sidecar has
 * that identity and admits the caller. NAME is the Service's absolute name, trailing dot
 * included: without the dot a pod's resolv.conf (ndots:5) sends every dnsRefresh lookup through
 * three or four search domains (NXDOMAIN for A and AAAA each) before the name itself.
 */
export async function checkDiscovery(t: Tap, objects: readonly KubeObject[]): Promise<void> {
  for (const caller of sidecarPods(objects)) {
    const { config } = sidecarConfig(objects, caller);
    for (const [name, upstream] of Object.entries((config.outbound?.upstreams ?? {}) as Obj)) {
      const m = /^dns:([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local\.:(\d+)$/.exec(upstream.endpoints[0]);
      if (!m) {
        t.fail(`${caller.metadata.name} → ${name}: ${upstream.endpoints[0]} is not a Service's absolute cluster DNS name (dns:SERVICE.NAMESPACE.svc.cluster.local.:PORT, trailing dot included)`);
        continue;
      }
      const [, service, namespace, port] = m;
      const svc = find(objects, 'Service', service as string);
      t.equal(svc?.metadata.namespace, namespace, `Service ${service} is in namespace ${namespace}`);
      t.equal(svc?.spec.clusterIP, 'None', `${service} is headless: one A record per ready pod`);
      const servicePort = (svc?.spec.ports as Obj[]).find((p) => p.port === Number(port));
      const target = sidecarPods(objects).find((p) => Object.entries(svc?.spec.selector ?? {}).every(([k, v]) => (p.spec as Obj).template.metadata.labels[k] === v)) as KubeObject;
      t.equal(portNamed(meshcarContainer(target) as Obj, servicePort?.targetPort), Number(port), `port ${port} → the target sidecar's "${servicePort?.targetPort}" port`);
      const targetConfig = sidecarConfig(objects, target).config;
      t.equal(upstream.identity, `spiffe://${targetConfig.trustDomain}/svc/${targetConfig.service}`, `${name}'s identity is the target sidecar's`);
      // the target's preStop pause must outlast the callers' view of its DNS record: their next
      // refresh plus the record's TTL (CoreDNS's kubernetes plugin: 5 s); shorter, and a caller
      // still dials a pod whose meshcar has stopped accepting
      const pause = Number((meshcarContainer(target) as Obj).lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
      const refresh = parseDuration(config.outbound.dnsRefresh ?? '5s') as number;
      t.ok(pause >= refresh + 5_000, `${service}'s preStop pause ${pause / 1000}s ≥ ${caller.metadata.name}'s dnsRefresh ${refresh / 1000}s + the record's 5 s TTL`);
      const callerId = `spiffe://${config.trustDomain}/svc/${config.service}`;
      t.ok((targetConfig.inbound.authorize as Obj[]).some((r) => r.from.includes(callerId)), `${service} admits ${callerId}`);
    }
  }
}

/**
 * A probe one slow answer does not fail: a timeout of at least 2 s and at least 3 failures in a
 * row (Kubernetes' defaults are 1 s and 3; failureThreshold 1 took a pod out of its Service
 * on a single answer over 1 s, a GC pause or a busy node).
 */
function probeTolerates(t: Tap, probe: Obj | undefined, what: string): void {
  t.ok((probe?.timeoutSeconds ?? 1) >= 2, `${what}: timeoutSeconds ${probe?.timeoutSeconds ?? '1 (default)'} ≥ 2`);
  t.ok((probe?.failureThreshold ?? 3) >= 3, `${what}: failureThreshold ${probe?.failureThreshold ?? '3 (default)'} ≥ 3`);
}

export async function checkCa(t: Tap, objects: readonly KubeObject[]): Promise<void> {
  const deployment = find(objects, 'Deployment', 'meshcar-ca') as Obj;
  const spec = deployment.spec.template.spec as Obj;
  t.same([deployment.spec.replicas, deployment.spec.strategy?.type], [1, 'Recreate'], 'one replica, never two on the volume');
  const caYaml = parse(String(find(objects, 'ConfigMap', 'meshcar-ca-config')?.data?.['ca.yaml'])) as Obj;
  const server = spec.containers.find((c: Obj) => c.name === 'ca') as Obj;
  probeTolerates(t, server.readinessProbe, 'the CA\'s readiness probe');
  const where = mountOf(spec, server, `${caYaml.dir}/bundle.pem`);
  t.ok(where?.volume.persistentVolumeClaim && find(objects, 'PersistentVolumeClaim', where.volume.persistentVolumeClaim.claimName), `the CA folder ${caYaml.dir} is on the claim`);
  t.match(spec.initContainers[0].args.join(' '), new RegExp(`meshcar ca init --dir ${caYaml.dir} --trust-domain ${caYaml.trustDomain}`), 'the init container makes that folder');
  for (const pod of sidecarPods(objects)) {
    const url = new URL(sidecarConfig(objects, pod).config.identity.ca.url);
    const svc = find(objects, 'Service', url.hostname.split('.')[0] as string) as Obj;
    t.ok(caYaml.serverNames.includes(url.hostname), `${pod.metadata.name} reaches the CA as ${url.hostname}, one of its serverNames`);
    t.ok((svc.spec.ports as Obj[]).some((p) => p.port === Number(url.port) && portNamed(server, p.targetPort) === Number(caYaml.listen.split(':')[1])), 'through the CA Service to the port the CA listens on');
  }
  const root = await scratch('ca-config');
  await writeFile(join(root, 'ca.yaml'), String(find(objects, 'ConfigMap', 'meshcar-ca-config')?.data?.['ca.yaml']).replaceAll(caYaml.dir, join(await caMaterials(), 'ca')));
  const result = await execFileAsync(process.execPath, [CLI, 'check', '--config', join(root, 'ca.yaml')]).catch((err: { stdout: string; stderr: string }) => err);
  t.match(`${result.stdout}${result.stderr}`, /valid ca configuration/, `meshcar check accepts the CA config: ${result.stderr}`);
}

export function checkPodMonitor(t: Tap, monitorSet: readonly KubeObject[], objects: readonly KubeObject[]): void {
  const monitor = find(monitorSet, 'PodMonitor', 'meshcar') as Obj;
  const selected = sidecarPods(objects).filter((p) => Object.entries(monitor.spec.selector.matchLabels as Obj).every(([k, v]) => (p.spec as Obj).template.metadata.labels[k] === v));
  t.equal(selected.length, sidecarPods(objects).length, 'it selects every pod with a sidecar');
  for (const endpoint of monitor.spec.podMetricsEndpoints as Obj[]) {
    t.ok(selected.every((p) => portNamed(meshcarContainer(p) as Obj, endpoint.port) !== undefined), `port "${endpoint.port}" exists in each`);
    t.equal(endpoint.path, '/metrics');
  }
}

/**
 * The CA's PodMonitor: it selects the CA's pods alone, on a port of the CA container, over
 * HTTPS trusting the bundle ConfigMap the sidecars mount, by a name the CA's certificate holds
 * (its serverNames). Without it, nothing scraped the CA under the Operator and the CA alerts
 * (issuer and root expiry, a sidecar's bundle behind) could never fire.
 */
export function checkCaPodMonitor(t: Tap, monitorSet: readonly KubeObject[], objects: readonly KubeObject[]): void {
  const monitor = find(monitorSet, 'PodMonitor', 'meshcar-ca') as Obj;
  t.ok(monitor, 'a PodMonitor for the CA');
  const matches = (labels: Obj) => Object.entries(monitor.spec.selector.matchLabels as Obj).every(([k, v]) => labels[k] === v);
  const selected = objects.filter((o) => o.kind === 'Deployment' && matches((o as Obj).spec.template.metadata.labels)).map((o) => o.metadata.name);
  t.same(selected, ['meshcar-ca'], 'it selects the CA\'s pods alone');
  const server = (find(objects, 'Deployment', 'meshcar-ca') as Obj).spec.template.spec.containers.find((c: Obj) => c.name === 'ca') as Obj;
  const caYaml = parse(String(find(objects, 'ConfigMap', 'meshcar-ca-config')?.data?.['ca.yaml'])) as Obj;
  const bundles = new Set(sidecarPods(objects).flatMap((p) => ((p.spec as Obj).template.spec.volumes as Obj[]).map((v) => v.configMap?.name).filter(Boolean)));
  for (const endpoint of monitor.spec.podMetricsEndpoints as Obj[]) {
    t.ok(portNamed(server, endpoint.port) !== undefined, `port "${endpoint.port}" exists in the CA container`);
    t.same([endpoint.path, endpoint.scheme], ['/metrics', 'https'], '/metrics over HTTPS');
    t.ok(bundles.has(endpoint.tlsConfig?.ca?.configMap?.name) && endpoint.tlsConfig.ca.configMap.key === 'bundle.pem', `it trusts the bundle ConfigMap the sidecars mount (${endpoint.tlsConfig?.ca?.configMap?.name})`);
    t.ok((caYaml.serverNames as string[]).includes(endpoint.tlsConfig?.serverName), `it checks a name the CA's certificate holds (${endpoint.tlsConfig?.serverName})`);
  }
}

/**
 * No pod gets a Kubernetes API token: none of them calls the API (identities come from the CA
 * or SPIRE, whose agent attests the pod by its service account's name, not a token), and a
 * token mounted for nothing is one more credential a compromised container could use.
 */
export function checkNoApiToken(t: Tap, objects: readonly KubeObject[]): void {
  for (const o of objects.filter((o) => o.kind === 'Deployment')) {
    const spec = podSpec(o) as Obj;
    const account = find(objects, 'ServiceAccount', spec.serviceAccountName ?? 'default');
    const mounted = spec.automountServiceAccountToken ?? account?.automountServiceAccountToken ?? true;
    t.equal(mounted, false, `${o.metadata.name}: no service account token mounted (pod or account ${spec.serviceAccountName ?? 'default'})`);
  }
}

/** Each Deployment's selector matches its own pods, and each Service's selects some Deployment's pods. */
export function checkSelectors(t: Tap, objects: readonly KubeObject[]): void {
  const deployments = objects.filter((o) => o.kind === 'Deployment') as Obj[];
  const matches = (selector: Obj | undefined, labels: Obj | undefined) => Object.keys(selector ?? {}).length > 0 && Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
  for (const d of deployments) t.ok(matches(d.spec.selector?.matchLabels, d.spec.template.metadata.labels), `Deployment ${d.metadata.name}: its selector matches its pod template's labels (the API server refuses it otherwise)`);
  for (const s of objects.filter((o) => o.kind === 'Service') as Obj[]) {
    const selected = deployments.filter((d) => matches(s.spec.selector, d.spec.template.metadata.labels)).map((d) => d.metadata.name);
    t.equal(selected.length, 1, `Service ${s.metadata.name} selects the pods of one Deployment: ${selected.join(', ') || 'none'}`);
  }
}
