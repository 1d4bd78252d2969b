// API discovery: what the sidecar has seen, as an OpenAPI 3.1 document (GET
// /endpoints?format=openapi). Inbound traffic is this service's API: each route with its
// methods, path parameters, the status codes answered and the callers (x-meshcar-callers).
// With a spec configured, documented operations never called are listed too
// (x-meshcar-calls: 0). The calls this service makes go under x-meshcar-upstreams, one paths
// object per upstream.

export interface DiscoveryRow {
  readonly direction: 'inbound' | 'outbound';
  readonly peer: string;
  readonly method: string;
  readonly route: string;
  readonly count: number;
  readonly statuses: readonly number[];
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
  const inbound = pathsOf(rows.filter((r) => r.direction === 'inbound'), documented.inbound);
  const upstreams: Record<string, { paths: Paths }> = {};
  const names = new Set([...rows.filter((r) => r.direction === 'outbound').map((r) => r.peer), ...(documented.upstreams?.keys() ?? [])]);
  for (const name of [...names].sort()) {
    upstreams[name] = { paths: pathsOf(rows.filter((r) => r.direction === 'outbound' && r.peer === name), documented.upstreams?.get(name)) };
  }
  return {
    openapi: '3.1.0',
    info: { title: `${service} (discovered by meshcar)`, version: new Date().toISOString(), description: 'The API endpoints this sidecar has carried since it started: routes, methods, status codes and callers.' },
    paths: inbound,
    'x-meshcar-upstreams': upstreams,
  };
}

function pathsOf(rows: readonly DiscoveryRow[], documented: readonly DocumentedOperation[] | undefined): Paths {
  const paths: Paths = {};
  const add = (route: string, method: string): Operation | undefined => {
    const lower = method.toLowerCase();
    // __other__ (beyond the route cap) and unknown methods have no place in an OpenAPI document
    if (!route.startsWith('/') || !OPERATION_METHODS.has(lower)) return undefined;
    const { template, params } = distinctParameters(route);
    const item = (paths[template] ??= {});
    return (item[lower] ??= {
      parameters: params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      responses: {},
      'x-meshcar-callers': [],
      'x-meshcar-calls': 0,
    });
  };
  for (const row of rows) {
    const op = add(row.route, row.method);
    if (!op) continue;
    op['x-meshcar-calls'] = (op['x-meshcar-calls'] as number) + row.count;
    const callers = op['x-meshcar-callers'] as string[];
    if (!callers.includes(row.peer)) callers.push(row.peer);
    const responses = op.responses as Record<string, unknown>;
    for (const status of row.statuses) responses[String(status)] = { description: `answered ${status}` };
    if (row.documented !== undefined) op['x-meshcar-documented'] = row.documented;
  }
  for (const d of documented ?? []) {
    const op = add(d.template, d.method);
    if (op) op['x-meshcar-documented'] = true;
  }
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) {
      const responses = op.responses as Record<string, unknown>;
      // an operation needs a response; one never called has none seen yet
      if (Object.keys(responses).length === 0) responses.default = { description: 'never called' };
      (op['x-meshcar-callers'] as string[]).sort();
    }
  }
  return paths;
}

/** `/a/{id}/b/{id}` → `/a/{id}/b/{id2}`: path parameter names must be unique in OpenAPI. */
function distinctParameters(route: string): { template: string; params: string[] } {
  const params: string[] = [];
  const template = route.replace(/\{([^}/]+)\}/g, (_m, name: string) => {
    let unique = name;
    for (let n = 2; params.includes(unique); n++) unique = `${name}${n}`;
    params.push(unique);
    return `{${unique}}`;
  });
  return { template, params };
}
