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
import { cgiReading } from './header-aliases.js';
import type { CompiledOperation } from './operation.js';
import { fold } from './query-values.js';
import { keyReadings } from './query-key-names.js';
import { MAX_QUOTED, type Violation } from './violations.js';

/** The headers method-override middlewares read, lower-case. */
const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** The query parameter they read (forms can only send GET and POST). */
const OVERRIDE_PARAM = '_method';

/** A query that could name the parameter: `_method` in any case or spelling (`.method`, `+method`), or spelled with escapes. */
const MAY_NAME_OVERRIDE = /method|%/i;

/**
 * Why the request asks for another method than `method` in a way the spec does not declare, or
 * undefined. A header is read as CGI and WSGI servers read it (`X_HTTP_Method_Override` is
 * X-HTTP-Method-Override to them, header-aliases.ts), a query name as PHP, qs or Rack read it
 * (`+_method`, `.method`, `[_method]`, `_method%00x` are _method to one of them: query-key-names.ts, query-values.ts fold).
 */
export function methodOverride(method: string, query: string, headers: IncomingHttpHeaders, op: CompiledOperation): Violation | undefined {
  for (const sent in headers) {
    const name = cgiReading(sent);
    if (!OVERRIDE_HEADERS.includes(name) || op.headerNames.includes(name)) continue;
    const value = headers[sent] as string | string[];
    const asked = Array.isArray(value) ? value.join(', ') : value;
    if (asked.trim().toUpperCase() !== method) return { kind: 'header', message: overridden(`header/${name}${spelledAs(sent, name)}`, asked, method) };
  }
  if (MAY_NAME_OVERRIDE.test(query) && !op.queryParams.some((p) => p.name === OVERRIDE_PARAM)) {
    for (const [key, asked] of new URLSearchParams(query)) {
      if (!keyReadings(key).some((reading) => fold(reading) === OVERRIDE_PARAM)) continue;
      if (asked.trim().toUpperCase() !== method) return { kind: 'query', message: overridden(`query/${OVERRIDE_PARAM}${spelledAs(key, OVERRIDE_PARAM)}`, asked, method) };
    }
  }
  return undefined;
}

/** ` (sent as "x_http_method")` when the name was sent in another spelling than the one it is read as. */
function spelledAs(sent: string, name: string): string {
  return sent === name ? '' : ` (sent as ${clip(JSON.stringify(sent), MAX_QUOTED)})`;
}

function overridden(at: string, asked: string, method: string): string {
  return `${at}: asks for ${clip(asked, MAX_QUOTED)}, which an app with a method override runs instead of ${method}, unchecked: send the ${clip(asked, MAX_QUOTED)} request itself`;
}
