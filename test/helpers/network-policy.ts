// Test helper: whether Kubernetes NetworkPolicies let one pod open a TCP connection to a named
// port of another, evaluated by the rules of networking.k8s.io/v1 for the parts
// config/kubernetes/network-policy uses (ingress; podSelector and namespaceSelector by
// matchLabels, alone or together; ports by name or number). A policy using anything else
// (matchExpressions, ipBlock, endPort, egress) is refused rather than read wrongly.
// test/deploy/kubernetes-network-policy.test.ts asks it what the manifests allow.

import type { KubeObject } from './kustomize.js';

type Labels = Readonly<Record<string, string>>;

/** A pod as the policies see it: where it runs, its labels and its containers' named ports. */
export interface PolicyPod {
  readonly name: string;
  readonly namespace: string;
  readonly namespaceLabels: Labels;
  readonly labels: Labels;
  readonly ports: Readonly<Record<string, number>>;
}

interface Selector { matchLabels?: Labels; matchExpressions?: unknown }
interface Peer { podSelector?: Selector; namespaceSelector?: Selector; ipBlock?: unknown }
interface PolicyPort { port?: string | number; protocol?: string; endPort?: number }
interface Rule { from?: Peer[]; ports?: PolicyPort[] }
interface PolicySpec { podSelector: Selector; policyTypes?: string[]; ingress?: Rule[]; egress?: unknown }

function matches(selector: Selector, labels: Labels): boolean {
  if (selector.matchExpressions !== undefined) throw new Error('matchExpressions is not evaluated here');
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function specOf(policy: KubeObject): PolicySpec {
  const spec = policy.spec as PolicySpec;
  if (spec.egress !== undefined || (spec.policyTypes ?? ['Ingress']).some((p) => p !== 'Ingress')) throw new Error(`${policy.metadata.name}: only ingress policies are evaluated here`);
  return spec;
}

function peerAllows(peer: Peer, policyNamespace: string, from: PolicyPod): boolean {
  if (peer.ipBlock !== undefined) throw new Error('ipBlock is not evaluated here');
  // podSelector alone: pods of the policy's namespace; with namespaceSelector: pods of those namespaces
  const inNamespace = peer.namespaceSelector ? matches(peer.namespaceSelector, from.namespaceLabels) : from.namespace === policyNamespace;
  return inNamespace && (peer.podSelector ? matches(peer.podSelector, from.labels) : true);
}

function portAllows(rulePort: PolicyPort, to: PolicyPod, port: string): boolean {
  if (rulePort.endPort !== undefined) throw new Error('endPort is not evaluated here');
  if ((rulePort.protocol ?? 'TCP') !== 'TCP') return false;
  if (rulePort.port === undefined) return true;
  return typeof rulePort.port === 'number' ? rulePort.port === to.ports[port] : rulePort.port === port && to.ports[port] !== undefined;
}

/** Whether `from` may connect to `to`'s named port under these policies (no policy selecting `to`: yes). */
export function ingressAllowed(policies: readonly KubeObject[], from: PolicyPod, to: PolicyPod, port: string): boolean {
  const selecting = policies.filter((p) => p.kind === 'NetworkPolicy' && (p.metadata.namespace ?? 'default') === to.namespace && matches(specOf(p).podSelector, to.labels));
  if (selecting.length === 0) return true;
  return selecting.some((p) => (specOf(p).ingress ?? []).some((rule) =>
    (rule.ports === undefined || rule.ports.length === 0 || rule.ports.some((rp) => portAllows(rp, to, port)))
    && (rule.from === undefined || rule.from.length === 0 || rule.from.some((peer) => peerAllows(peer, p.metadata.namespace ?? 'default', from)))));
}

/** The pods of a rendered kustomization's Deployments, in their namespace (labelled as Kubernetes labels every namespace). */
export function podsOf(objects: readonly KubeObject[]): PolicyPod[] {
  return objects.filter((o) => o.kind === 'Deployment').map((o) => {
    const template = (o.spec as { template: { metadata: { labels: Labels }; spec: { containers: Array<{ ports?: Array<{ name?: string; containerPort: number }> }> } } }).template;
    const namespace = o.metadata.namespace ?? 'default';
    const ports = Object.fromEntries(template.spec.containers.flatMap((c) => (c.ports ?? []).filter((p) => p.name).map((p) => [p.name as string, p.containerPort])));
    return { name: o.metadata.name, namespace, namespaceLabels: { 'kubernetes.io/metadata.name': namespace }, labels: template.metadata.labels, ports };
  });
}
