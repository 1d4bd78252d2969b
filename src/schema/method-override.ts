// A request that asks the app to treat it as another method: `X-HTTP-Method-Override: DELETE`
// on a POST (Express's method-override, Google's APIs, Symfony and Laravel with overrides
// on), or `?_method=DELETE` (Spring's HiddenHttpMethodFilter reads the query too, Laravel,
// Express's method-override when told to). The OpenAPI check matched POST; such an app runs
// DELETE, an operation the spec may not have, or has with other rules. The spec cannot say
// that one method stands for another, so the check cannot hold the request to the operation
// the app runs: such a request is refused, unless its operation declares that header or query
// parameter itself (then the API documents the override and its parameter rules hold it).

import type { IncomingHttpHeaders } from 'node:http';
import { clip } from '../clip.js';
import type { CompiledOperation } from './operation.js';
import { MAX_QUOTED, type Violation } from './violations.js';

/** The headers method-override middlewares read, lower-case. */
const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** The query parameter they read (forms can only send GET and POST). */
const OVERRIDE_PARAM = '_method';

/** Why the request asks for another method than `method` in a way the spec does not declare, or undefined. */
export function methodOverride(method: string, query: string, headers: IncomingHttpHeaders, op: CompiledOperation): Violation | undefined {
  for (const name of OVERRIDE_HEADERS) {
    const value = headers[name];
    if (value === undefined || op.headerNames.includes(name)) continue;
    const asked = Array.isArray(value) ? value.join(', ') : value;
    if (asked.trim().toUpperCase() !== method) return { kind: 'header', message: overridden(`header/${name}`, asked, method) };
  }
  // the query is parsed only when it could hold the name (`_method`, or spelled with escapes)
  if ((query.indexOf(OVERRIDE_PARAM) !== -1 || query.indexOf('%') !== -1) && !op.queryParams.some((p) => p.name === OVERRIDE_PARAM)) {
    for (const asked of new URLSearchParams(query).getAll(OVERRIDE_PARAM)) {
      if (asked.trim().toUpperCase() !== method) return { kind: 'query', message: overridden(`query/${OVERRIDE_PARAM}`, asked, method) };
    }
  }
  return undefined;
}

function overridden(at: string, asked: string, method: string): string {
  return `${at}: asks for ${clip(asked, MAX_QUOTED)}, which an app with a method override runs instead of ${method}, unchecked: send the ${clip(asked, MAX_QUOTED)} request itself`;
}
