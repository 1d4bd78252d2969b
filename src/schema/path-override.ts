// A request that asks the app to route it as another path: `X-Original-URL` or `X-Rewrite-URL`,
// which old Symfony (before 2.7.49/3.4.14, CVE-2018-14773), Zend Framework 1 and IIS's URL
// Rewrite module read as the path to route. The OpenAPI check matched the request line's path;
// such an app serves the header's, an operation the spec may not have, or has with other rules.
// As with a method override (method-override.ts), the check cannot hold the request to the
// operation the app runs: such a request is refused, unless its operation declares the header
// itself (then the API documents it and its parameter rules hold it).

import type { IncomingHttpHeaders } from 'node:http';
import { clip } from '../clip.js';
import { cgiReading } from './header-aliases.js';
import type { CompiledOperation } from './operation.js';
import { MAX_QUOTED, type Violation } from './violations.js';

/** The headers such apps read the path from, lower-case. */
const PATH_OVERRIDE_HEADERS = ['x-original-url', 'x-rewrite-url'];

/** Why the request names another path in a way the spec does not declare, or undefined. Names read as CGI servers read them (`X_Original_URL`). */
export function pathOverride(headers: IncomingHttpHeaders, op: CompiledOperation): Violation | undefined {
  for (const sent in headers) {
    const name = cgiReading(sent);
    if (!PATH_OVERRIDE_HEADERS.includes(name) || op.headerNames.includes(name)) continue;
    const value = headers[sent] as string | string[];
    const asked = Array.isArray(value) ? value.join(', ') : value;
    const spelled = sent === name ? '' : ` (sent as ${clip(JSON.stringify(sent), MAX_QUOTED)})`;
    return { kind: 'header', message: `header/${name}${spelled}: names the path ${clip(asked, MAX_QUOTED)}, which an app with URL rewriting (old Symfony and Zend, IIS's URL Rewrite) routes instead, unchecked: send the request to that path itself` };
  }
  return undefined;
}
