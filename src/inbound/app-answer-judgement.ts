// What an HTTP/1.1 app's answer, as llhttp reads it on an app connection (app-connection.ts),
// says beyond its fields: a status under 200 is no final answer (skipped, but for the ones that
// fail the request: a switch nobody asked for, or no status at all), a trailer naming
// Connection makes the connection unfit for another request, and so does an answer whose body
// is skipped while the app may still send one.

import { APP_CLIENT_ERRORS, appClientError } from './app-dispatch.js';

/**
 * Interim answers one request may get before its final one: a 100 Continue and a few 103 Early
 * Hints are what servers send. An app sending them without end held its request (and a core
 * reading them) for the route's whole timeout, without bound where the route has none.
 */
export const MAX_INTERIM_ANSWERS = 16;

/**
 * A status under 200 (no final answer): the error that fails the request, or undefined for an
 * interim answer that is skipped (103 Early Hints... are not relayed). `seen`: the interim
 * answers to this request so far, this one included.
 */
export function nonFinalStatusError(statusCode: number, seen: number): Error | undefined {
  if (seen > MAX_INTERIM_ANSWERS) return appClientError(APP_CLIENT_ERRORS.tooManyInterim, `more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers to one request`);
  // llhttp takes any three digits; 000 to 099 are no status
  if (statusCode < 100) return appClientError('HPE_INVALID_STATUS', `status ${statusCode}`);
  // Expect and Upgrade requests never come this way (app-http1-node.ts carries them). A 100
  // Continue nobody asked for is skipped like any interim answer (RFC 9110 §15.2: a client
  // must take 1xx it did not expect): servers that send one to every POST answer curl, Node
  // and Go straight, and Envoy drops it too; a 502 for it broke the call only through the pair
  if (statusCode === 101) return appClientError(APP_CLIENT_ERRORS.unaskedUpgrade, 'a 101 to a request that asked for no upgrade');
  return undefined;
}

/**
 * Whether trailer field lines hold a Connection (or Proxy-Connection) field. llhttp reads its
 * `close` there as in the head and then refuses every later byte on the connection
 * (HPE_CLOSED_CONNECTION), so the next request on it would reach the app and be answered 502:
 * such a connection is never reused, whatever the value (a harmless close when it says less).
 */
export function namesConnection(fields: readonly string[]): boolean {
  for (let i = 0; i < fields.length; i += 2) {
    const name = (fields[i] as string).toLowerCase();
    if (name === 'connection' || name === 'proxy-connection') return true;
  }
  return false;
}

/**
 * Whether an answer read without a body (to HEAD; a 204 or 304) leaves the connection unfit for
 * another request: the app may send the body anyway, later and in its own write, and those
 * bytes were read as the next caller's answer (Python's http.server with `do_HEAD = do_GET`:
 * other callers' GETs answered 502, and a raw app's late bytes reached another caller as its
 * answer). So never after HEAD (undici does the same), whose Content-Length is the GET's and
 * says nothing of what follows; after a 204 or 304 only when its fields announce a body
 * (Transfer-Encoding, or a Content-Length other than 0), which a correct one does not.
 */
export function skippedBodyMayFollow(isHead: boolean, raw: readonly string[]): boolean {
  if (isHead) return true;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name === 'transfer-encoding') return true;
    if (name === 'content-length' && (raw[i + 1] as string).trim() !== '0') return true;
  }
  return false;
}

