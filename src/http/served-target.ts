// What a server that answers HTTP/1.x requests itself (the CA, the admin port) takes of a
// request's head before routing it: a head within maxHeaderSize as written, whitespace and lines
// included (head-size.ts: Node counts names and values only), exactly one Host on HTTP/1.1 and HTTP/1.x only
// (host-field.ts; RFC 9112 §3.2 has a server answer 400 otherwise, and Node's own answer to a
// missing Host is a bare 400, so both servers turn it off and answer here), and the request
// target in origin-form or absolute-form (RFC 9112 §3.2.2: every server must accept the
// latter), split into the path it is routed by and its query.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshcarError } from '../errors.js';
import { parseRequestTarget, targetShapeProblem } from './absolute-form.js';
import { hostFieldProblem } from './host-field.js';
import { headSizeProblem } from './head-size.js';

export interface ServedTarget {
  /** The path routed by, without its query; always starts with `/` (or is `*`). */
  readonly path: string;
  /** What follows the `?`, without it ('' when none). */
  readonly query: string;
  /** The authority an absolute-form target names (it stands for Host, which is then ignored), else undefined. */
  readonly authority: string | undefined;
}

/**
 * The target of a request, or a 431 headers_too_large or 400 bad_request (a MeshcarError) naming
 * what is wrong with its head. The connection closes after such an answer (`res`): a head this
 * server cannot take says nothing it can trust of where the next request starts. Called as the
 * request arrives, on a server set up with keepEveryHeadLine.
 */
export function servedTarget(req: IncomingMessage, res: ServerResponse): ServedTarget {
  const tooLarge = headSizeProblem(req);
  if (tooLarge !== undefined) {
    res.setHeader('connection', 'close');
    throw new MeshcarError('headers_too_large', tooLarge);
  }
  const target = parseRequestTarget(req.url);
  const problem = hostFieldProblem(req, ' (RFC 9112 §3.2)') ?? targetShapeProblem(target);
  if (problem !== undefined) {
    res.setHeader('connection', 'close');
    throw new MeshcarError('bad_request', problem);
  }
  const mark = target.path.indexOf('?');
  return {
    path: mark === -1 ? target.path : target.path.slice(0, mark),
    query: mark === -1 ? '' : target.path.slice(mark + 1),
    authority: target.authority,
  };
}
