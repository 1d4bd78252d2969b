// config/kubernetes/network-policy, evaluated offline against the pods of base: who may open a
// connection to which port once the policies are applied (test/helpers/network-policy.ts reads
// them by Kubernetes' rules). Callers' sidecars, in any namespace, reach each inbound and the
// CA; Prometheus, from its namespace, reaches every port a pod's scrape annotations name; a
// pod without a sidecar reaches none of them, and no sidecar reaches another's admin port.
// Schemas and field names are checked with the other kustomizations in kubernetes.test.ts.

import t from 'tap';
import { readFileSync } from 'node:fs';
import { renderKustomization, type KubeObject } from '../helpers/kustomize.js';
import { ingressAllowed, podsOf, type PolicyPod } from '../helpers/network-policy.js';

const ROOT = new URL('../../config/kubernetes/', import.meta.url).pathname;
const policies = renderKustomization(`${ROOT}network-policy`);
const base = renderKustomization(`${ROOT}base`);
const pods = podsOf(base);
const monitoring = /kubernetes\.io\/metadata\.name: (\S+)\}/.exec(readFileSync(`${ROOT}network-policy/network-policy.yaml`, 'utf8'))?.[1] ?? '';

const pod = (name: string, namespace: string, labels: Record<string, string>): PolicyPod => ({ name, namespace, namespaceLabels: { 'kubernetes.io/metadata.name': namespace }, labels, ports: {} });
const prometheus = pod('prometheus', monitoring, { 'app.kubernetes.io/name': 'prometheus' });
const stranger = pod('stranger', 'default', { 'app.kubernetes.io/name': 'stranger' });
const callerElsewhere = pod('caller-in-shop', 'shop', { 'meshcar.io/sidecar': 'true' });
const sidecars = pods.filter((p) => p.labels['meshcar.io/sidecar'] === 'true');
const annotations = (name: string) => ((base.find((o) => o.kind === 'Deployment' && o.metadata.name === name)?.spec as { template: { metadata: { annotations?: Record<string, string> } } }).template.metadata.annotations ?? {});

t.test('the evaluator itself: no policy allows all, a policy with no rule allows none', async (t) => {
  const [target] = sidecars;
  if (!target) throw new Error('base has no sidecar pod');
  const port = Object.keys(target.ports)[0] ?? '';
  t.ok(ingressAllowed([], stranger, target, port), 'no policy');
  const denyAll = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny', namespace: 'default' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } } as KubeObject;
  t.notOk(ingressAllowed([denyAll], stranger, target, port), 'deny all');
  t.notOk(ingressAllowed([denyAll], sidecars[1] ?? stranger, target, port), 'deny all, from a sidecar too');
});

t.test('the monitoring namespace is named in the README as in the policy', async (t) => {
  t.ok(monitoring, `the policy names one (${monitoring})`);
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  t.match(readme, new RegExp(`network-policy/.*\`${monitoring}\``), 'README says which');
});

t.test('every sidecar pod is selected, the CA too, and no other pod', async (t) => {
  const stub = (p: PolicyPod) => ingressAllowed(policies, stranger, p, '__none__');
  // a selected pod refuses a port no rule names; one no policy selects takes anything
  t.same(pods.filter(stub).map((p) => p.name), [], 'every pod of base is behind a policy');
  t.ok(sidecars.length >= 2, `${sidecars.length} sidecar pods`);
});

t.test('the inbound: callers\' sidecars in any namespace, no one else', async (t) => {
  const inbounds = sidecars.filter((p) => p.ports.mesh !== undefined);
  t.ok(inbounds.length > 0, 'some pod has an inbound');
  for (const to of inbounds) {
    for (const from of [...sidecars.filter((p) => p !== to), callerElsewhere]) t.ok(ingressAllowed(policies, from, to, 'mesh'), `${from.namespace}/${from.name} -> ${to.name}:mesh`);
    for (const from of [stranger, prometheus]) t.notOk(ingressAllowed(policies, from, to, 'mesh'), `${from.name} refused at ${to.name}:mesh`);
  }
});

t.test('every port a pod asks Prometheus to scrape: Prometheus, no sidecar, no stranger', async (t) => {
  const scraped = pods.filter((p) => annotations(p.name)['prometheus.io/scrape'] === 'true');
  t.equal(scraped.length, pods.length, 'every pod is scraped');
  for (const to of scraped) {
    const number = Number(annotations(to.name)['prometheus.io/port']);
    const port = Object.entries(to.ports).find(([, n]) => n === number)?.[0] ?? '';
    t.ok(port, `${to.name}: the scrape port ${number} is a named container port`);
    t.ok(ingressAllowed(policies, prometheus, to, port), `prometheus -> ${to.name}:${port}`);
    t.notOk(ingressAllowed(policies, stranger, to, port), `stranger refused at ${to.name}:${port}`);
    // the admin port answers /metrics and /ready to any address: no other workload's business
    if (port === 'admin') for (const from of [...sidecars.filter((p) => p !== to), callerElsewhere]) t.notOk(ingressAllowed(policies, from, to, port), `${from.name} refused at ${to.name}:admin`);
  }
});

t.test('the CA: every sidecar, in any namespace, and no one else but Prometheus', async (t) => {
  const ca = pods.find((p) => p.name === 'meshcar-ca');
  if (!ca) throw new Error('base has no meshcar-ca Deployment');
  for (const from of [...sidecars, callerElsewhere]) t.ok(ingressAllowed(policies, from, ca, 'https'), `${from.namespace}/${from.name} -> CA`);
  t.notOk(ingressAllowed(policies, stranger, ca, 'https'), 'stranger refused at the CA');
});
