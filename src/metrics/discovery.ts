// API discovery: what the sidecar has seen, as an OpenAPI 3.1 document (GET
// /endpoints?format=openapi). Inbound traffic is this service's API: each route with its
// methods, path parameters, the status codes answered and the callers (x-meshcar-callers).
// With a spec configured, documented operations never called are listed too
// (x-meshcar-calls: 0). The calls this service makes go under x-meshcar-upstreams, one paths
// object per upstream. Each operation is listed once: templates that differ only in their
// parameters' names are one path (OpenAPI forbids both), under the spec's template when one
// is documented, so calls counted under a learned `/orders/{id}` (before a reload brought the
// spec, or by a method it lacks) join its `/orders/{orderId}`. Paths are as requested, with
// the spec's base path (routes are: src/schema/spec.ts), so the document needs no `servers`.

export interface DiscoveryRow {
  readonly direction: 'inbound' | 'outbound';
  readonly peer: string;
  readonly method: string;
  readonly route: string;
  readonly count: number;
  /** What it answered, as OpenAPI response keys: "404", a range ("2XX") for a status HTTP does not register, "default" outside 100–599. */
  readonly responses: readonly string[];
  /** undefined: no spec for this traffic. */
  readonly documented: boolean | undefined;
}

/** A spec's operation, for the ones never called. */
export interface DocumentedOperation {
  readonly method: string;
  readonly template: string;
}

const OPERATION_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

type Operation = Record<string, unknown>;
type Paths = Record<string, Record<string, Operation>>;

export function discoveryDocument(service: string, rows: readonly DiscoveryRow[], documented: { inbound?: readonly DocumentedOperation[]; upstreams?: ReadonlyMap<string, readonly DocumentedOperation[]> } = {}): Record<string, unknown> {
  const inbound = pathsOf(rows.filter((r) => r.direction === 'inbound'), documented.inbound, true);
  const upstreams: Record<string, { paths: Paths }> = {};
  const names = new Set([...rows.filter((r) => r.direction === 'outbound').map((r) => r.peer), ...(documented.upstreams?.keys() ?? [])]);
  for (const name of [...names].sort()) {
    // the caller of an upstream's operations is this service itself: no x-meshcar-callers (an
    // outbound row's peer is the upstream, which listed it as its own caller)
    upstreams[name] = { paths: pathsOf(rows.filter((r) => r.direction === 'outbound' && r.peer === name), documented.upstreams?.get(name), false) };
  }
  return {
    openapi: '3.1.0',
    info: { title: `${service} (discovered by meshcar)`, version: new Date().toISOString(), description: 'The API endpoints this sidecar has carried since it started: routes, methods, status codes and callers.' },
    paths: inbound,
    'x-meshcar-upstreams': upstreams,
  };
}

/** A parameter in a template, `{name}`, or `{}` with no name (a spec may have one). */
const PARAM = /\{([^}/]*)\}/g;

/** What makes templates one path in OpenAPI: the literal text, each parameter as `{}` (`/orders/{id}` is `/orders/{orderId}`). */
const shapeOf = (template: string): string => template.replace(PARAM, '{}');

const namesOf = (template: string): string[] => [...template.matchAll(PARAM)].map((m) => m[1] as string);

/**
 * The one template each shape is listed under: a documented one (the spec's first) over a
 * learned one (the least, so the document does not depend on the order rows come in). Its
 * parameters keep their names; one with no name (`{}`) takes another template's name at that
 * place, else `param`; then names are made unique, as OpenAPI requires.
 */
function templatesByShape(routes: readonly string[], documented: readonly string[]): Map<string, string> {
  const groups = new Map<string, { chosen: string; documented: boolean; members: Set<string> }>();
  const add = (template: string, isDocumented: boolean) => {
    const shape = shapeOf(template);
    const group = groups.get(shape);
    if (group === undefined) groups.set(shape, { chosen: template, documented: isDocumented, members: new Set([template]) });
    else {
      group.members.add(template);
      if (!group.documented && (isDocumented || template < group.chosen)) Object.assign(group, { chosen: template, documented: isDocumented });
    }
  };
  for (const template of documented) add(template, true);
  for (const template of routes) add(template, false);
  const named = new Map<string, string>();
  for (const [shape, { chosen, members }] of groups) {
    const names = namesOf(chosen).map((name, i) => name || [...members].map((t) => namesOf(t)[i]).find((n) => n) || 'param');
    const unique: string[] = [];
    for (const name of names) {
      let candidate = name;
      for (let n = 2; unique.includes(candidate); n++) candidate = `${name}${n}`;
      unique.push(candidate);
    }
    let i = 0;
    named.set(shape, chosen.replace(PARAM, () => `{${unique[i++] as string}}`));
  }
  return named;
}

/** `withCallers`: each operation lists the peers that called it (inbound rows). */
function pathsOf(rows: readonly DiscoveryRow[], documented: readonly DocumentedOperation[] = [], withCallers: boolean): Paths {
  // __other__ (beyond the route cap) and unknown methods have no place in an OpenAPI document
  const listed = rows.filter((r) => r.route.startsWith('/') && OPERATION_METHODS.has(r.method.toLowerCase()));
  const specOps = documented.filter((d) => d.template.startsWith('/') && OPERATION_METHODS.has(d.method.toLowerCase()));
  const templates = templatesByShape(
    listed.map((r) => r.route),
    specOps.map((d) => d.template),
  );
  const paths: Paths = {};
  const add = (route: string, method: string): Operation => {
    const template = templates.get(shapeOf(route)) as string;
    const item = (paths[template] ??= {});
    return (item[method.toLowerCase()] ??= {
      parameters: namesOf(template).map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      responses: {},
      ...(withCallers ? { 'x-meshcar-callers': [] } : {}),
      'x-meshcar-calls': 0,
    });
  };
  // a call and the documented operation it matches are one operation, under the spec's template
  for (const row of listed) {
    const op = add(row.route, row.method);
    op['x-meshcar-calls'] = (op['x-meshcar-calls'] as number) + row.count;
    const callers = op['x-meshcar-callers'] as string[] | undefined;
    if (callers !== undefined && !callers.includes(row.peer)) callers.push(row.peer);
    const responses = op.responses as Record<string, unknown>;
    for (const key of row.responses) responses[key] = { description: answeredAs(key) };
    // documented by any of its rows (one may be from before a reload brought the spec)
    if (row.documented !== undefined && op['x-meshcar-documented'] !== true) op['x-meshcar-documented'] = row.documented;
  }
  for (const d of specOps) add(d.template, d.method)['x-meshcar-documented'] = true;
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) {
      const responses = op.responses as Record<string, unknown>;
      // an operation needs a response; one never called has none seen yet
      if (Object.keys(responses).length === 0) responses.default = { description: 'never called' };
      (op['x-meshcar-callers'] as string[] | undefined)?.sort();
    }
  }
  return paths;
}

function answeredAs(key: string): string {
  if (key === 'default') return 'answered a status outside 100-599';
  return key.endsWith('XX') ? `answered a ${key} status HTTP does not register` : `answered ${key}`;
}
