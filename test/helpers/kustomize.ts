// Test helper: renders a kustomization the way `kubectl apply -k` would, for the parts
// config/kubernetes uses (resources: files and folders; patches: strategic merge, from a file or
// inline, `$patch: delete` of a resource or of a list item; namespace; images), so the
// manifests are checked offline with no kubectl. test/deploy/kubernetes.test.ts compares this
// rendering with `kubectl kustomize` wherever kubectl is installed.

import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export type KubeObject = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } & Record<string, unknown> };

const KUSTOMIZATION_KEYS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'patches', 'images']);
/** The strategic-merge keys of the lists these manifests patch (as the Kubernetes API defines them). */
const MERGE_KEYS: Record<string, string> = { containers: 'name', initContainers: 'name', volumes: 'name', env: 'name', volumeMounts: 'mountPath', ports: 'containerPort' };
/** Kinds that live in no namespace (none of ours so far; kustomize leaves these alone). */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition']);

/** Every YAML document of a file, parsed (errors thrown with the file named). */
export function readDocuments(file: string): unknown[] {
  return parseYamlDocuments(readFileSync(file, 'utf8'), file);
}

function parseYamlDocuments(text: string, where: string): unknown[] {
  return parseAllDocuments(text).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors[0]?.message}`);
    return doc.toJS() as unknown;
  }).filter((doc) => doc !== null && doc !== undefined);
}

/** The objects `kubectl kustomize dir` would print (order aside). */
export function renderKustomization(dir: string): KubeObject[] {
  const file = join(dir, 'kustomization.yaml');
  const k = readDocuments(file)[0] as Record<string, unknown>;
  const unknown = Object.keys(k).filter((key) => !KUSTOMIZATION_KEYS.has(key));
  if (unknown.length > 0) throw new Error(`${file}: keys this renderer does not know: ${unknown.join(', ')}`);
  let objects: KubeObject[] = [];
  for (const entry of (k.resources as string[] | undefined) ?? []) {
    const path = join(dir, entry);
    objects.push(...(statSync(path).isDirectory() ? renderKustomization(path) : (readDocuments(path) as KubeObject[])));
  }
  for (const patch of (k.patches as Array<{ path?: string; patch?: string }> | undefined) ?? []) {
    const docs = patch.path !== undefined ? readDocuments(join(dir, patch.path)) : parseYamlDocuments(patch.patch ?? '', `${file}: inline patch`);
    for (const doc of docs as KubeObject[]) objects = applyPatch(objects, doc, file);
  }
  const namespace = k.namespace as string | undefined;
  if (namespace) for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = namespace;
  for (const image of (k.images as Array<{ name: string; newName?: string; newTag?: string }> | undefined) ?? []) {
    for (const container of allContainers(objects)) {
      const [name, tag] = splitImage(String(container.image));
      if (name === image.name) container.image = `${image.newName ?? name}${image.newTag ? `:${image.newTag}` : tag ? `:${tag}` : ''}`;
    }
  }
  return objects;
}

function splitImage(image: string): [string, string | undefined] {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? [image.slice(0, colon), image.slice(colon + 1)] : [image, undefined];
}

/** Every container and init container of every workload. */
export function allContainers(objects: readonly KubeObject[]): Array<Record<string, unknown>> {
  return objects.flatMap((o) => {
    const spec = podSpec(o);
    return spec ? [...((spec.initContainers as Array<Record<string, unknown>>) ?? []), ...((spec.containers as Array<Record<string, unknown>>) ?? [])] : [];
  });
}

/** The pod template's spec of a Deployment or Job, else undefined. */
export function podSpec(o: KubeObject): Record<string, unknown> | undefined {
  const template = (o.spec as { template?: { spec?: Record<string, unknown> } } | undefined)?.template;
  return template?.spec;
}

function applyPatch(objects: KubeObject[], patch: KubeObject, file: string): KubeObject[] {
  const index = objects.findIndex((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
  if (index === -1) throw new Error(`${file}: the patch targets ${patch.kind}/${patch.metadata.name}, which no resource defines`);
  if (patch.$patch === 'delete') return objects.filter((_, i) => i !== index);
  objects[index] = merge(objects[index], patch, '') as KubeObject;
  return objects;
}

function merge(target: unknown, patch: unknown, field: string): unknown {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (!key || !Array.isArray(target)) return patch;
    const result = [...(target as Array<Record<string, unknown>>)];
    for (const item of patch as Array<Record<string, unknown>>) {
      const at = result.findIndex((t) => t[key] === item[key]);
      if (item.$patch === 'delete') {
        if (at === -1) throw new Error(`$patch: delete of ${field} ${String(item[key])}, which is not there`);
        result.splice(at, 1);
      } else if (at === -1) result.push(item);
      else result[at] = merge(result[at], item, '') as Record<string, unknown>;
    }
    return result;
  }
  if (isMap(patch) && isMap(target)) {
    const result: Record<string, unknown> = { ...target };
    for (const [k, v] of Object.entries(patch)) result[k] = v === null ? undefined : merge(target[k], v, k);
    return result;
  }
  return patch;
}

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A stable form for comparing two renderings: objects sorted by kind/name, merge-keyed lists by key. */
export function normalized(objects: readonly KubeObject[]): unknown[] {
  const sortLists = (value: unknown, field: string): unknown => {
    if (Array.isArray(value)) {
      const items = value.map((v) => sortLists(v, ''));
      const key = MERGE_KEYS[field];
      return key ? items.sort((a, b) => String((a as Record<string, unknown>)[key]).localeCompare(String((b as Record<string, unknown>)[key]))) : items;
    }
    if (isMap(value)) return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, sortLists(v, k)]).sort(([a], [b]) => (a as string).localeCompare(b as string)));
    return value;
  };
  return [...objects].sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`)).map((o) => sortLists(o, ''));
}
