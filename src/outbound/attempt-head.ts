// The request's head toward the upstream, for the attempt controller (attempt.ts) and its
// forwarders (forward-http1.ts, forward-h2c.ts): the app's forwardable fields, with Host carried
// as :authority and x-request-id as the exchange's. A plain function of the controller, called
// once per request.

import type { OutgoingHttpHeaders } from 'node:http2';
import { appendForwardableFields, forwardableHeaders } from '../http/hop-by-hop.js';
import type { Attempt } from './attempt.js';

/** The app's fields the upstream head gets from us instead: Host becomes :authority. */
const REPLACED_UPSTREAM = new Set(['host', 'x-request-id']);

/**
 * The request's HTTP/2 head toward the upstream: for meshcar's codec the flat list it encodes
 * as it is (pseudo-headers first), with no object to copy and flatten again; for Node's, an object.
 * After route() (it reads the attempt's pool).
 */
export function upstreamHeaders(attempt: Attempt, method: string, path: string, authority: string | undefined): OutgoingHttpHeaders | string[] {
  if (attempt.pool.takesHeaderList) {
    const list = [':method', method, ':scheme', 'https', ':path', path];
    if (authority !== undefined) list.push(':authority', authority);
    appendForwardableFields(list, attempt.reqHeaders, REPLACED_UPSTREAM);
    list.push('x-request-id', attempt.exchange.requestId);
    return list;
  }
  const headers = forwardableHeaders(attempt.reqHeaders);
  headers.host = undefined; // HTTP/2 carries it as :authority; undefined values are not sent
  headers[':method'] = method;
  headers[':path'] = path;
  headers[':authority'] = authority;
  headers['x-request-id'] = attempt.exchange.requestId;
  return headers;
}
