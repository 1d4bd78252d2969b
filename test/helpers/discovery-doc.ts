// Checks a discovery document (GET /endpoints?format=openapi) as OpenAPI tools read it: the
// OpenAPI parser's validation (which takes `/orders/{id}` beside `/orders/{orderId}`, and a
// `{}`), then what it lets through: two paths that differ only in their parameters' names
// (OpenAPI 3.1: identical, they MUST NOT both exist), a template expression without a name,
// and path parameters that do not match the template's, one for one. Each `paths` object is
// checked: the inbound one and every upstream's under x-meshcar-upstreams.

import SwaggerParser from '@apidevtools/swagger-parser';

type Paths = Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>>;

const EXPRESSION = /\{([^}/]*)\}/g;

function pathsProblems(where: string, paths: Paths): string[] {
  const problems: string[] = [];
  const shapes = new Map<string, string>();
  for (const [template, item] of Object.entries(paths)) {
    const shape = template.replace(EXPRESSION, '{}');
    const twin = shapes.get(shape);
    if (twin !== undefined) problems.push(`${where}: ${template} is ${twin} (only the parameter names differ)`);
    shapes.set(shape, template);
    const names = [...template.matchAll(EXPRESSION)].map((m) => m[1] as string);
    if (names.includes('')) problems.push(`${where}: ${template} has a template expression without a name`);
    for (const [method, op] of Object.entries(item)) {
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      if (JSON.stringify([...declared].sort()) !== JSON.stringify([...names].sort())) {
        problems.push(`${where}: ${method} ${template} declares path parameters ${JSON.stringify(declared)}, the template has ${JSON.stringify(names)}`);
      }
    }
  }
  return problems;
}

/** Every problem found; [] for a document OpenAPI tools take as it is. */
export async function discoveryProblems(doc: Record<string, unknown>): Promise<string[]> {
  const problems: string[] = [];
  const upstreams = (doc['x-meshcar-upstreams'] ?? {}) as Record<string, { paths: Paths }>;
  const all: Array<[string, Paths]> = [['paths', doc.paths as Paths], ...Object.entries(upstreams).map(([name, u]): [string, Paths] => [`x-meshcar-upstreams.${name}`, u.paths])];
  for (const [where, paths] of all) {
    problems.push(...pathsProblems(where, paths));
    try {
      // each upstream's paths as a document of their own, so the parser checks them too
      await SwaggerParser.validate(structuredClone({ ...doc, paths, 'x-meshcar-upstreams': {} }) as never);
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  return problems;
}
