// The Host field of an HTTP/1.1 request, as both sidecars require it (RFC 9112 §3.2): exactly
// one. Node's parser keeps the first of two, so a sidecar that routes or authorizes by one
// and an app that reads the other would mean two different sites; and Node answers a missing
// one itself, with a bare 400, on a server that has not turned that check off. Also the
// version: Node's parser takes an HTTP/0.9 request line (`GET /x`, no version) and any headers
// after it, which a sidecar would pass on as HTTP/1.1, with a Host the caller never sent.

import type { IncomingMessage } from 'node:http';

/** Whether an HTTP/1.1 head carries Host more than once (RFC 9112 §3.2: a 400; Node keeps the first). */
export function repeatsHost(rawHeaders: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** Why an HTTP/1.x request's Host cannot be taken (two of them, or none on HTTP/1.1), or its version (not 1.x), or undefined; `hint` follows the missing Host's message. */
export function hostFieldProblem(req: IncomingMessage, hint = ''): string | undefined {
  if (req.httpVersionMajor !== 1) return `HTTP/${req.httpVersion} is not taken: send HTTP/1.1 (or HTTP/1.0)`;
  if (req.headers.host === undefined) {
    return req.httpVersionMajor === 1 && req.httpVersionMinor === 1 ? `an HTTP/1.1 request must carry a Host header${hint}` : undefined;
  }
  return repeatsHost(req.rawHeaders) ? 'the request has more than one Host header' : undefined;
}
