// An Expect field a sidecar's HTTP/1.1 listener cannot meet (anything but 100-continue, or
// 100-continue beside another expectation): our 417 (RFC 9110 §10.1.1), a JSON refusal as
// every other, where Node's own answer is a bare status line. Shared by the outbound's app
// listener and the inbound's callers' listener.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshcarError } from '../errors.js';
import { requestIdOf } from './request-id.js';
import { sendError } from './status.js';

/** The expectation quoted in the refusal is cut here: the sender does not size our answer. */
const QUOTE_LIMIT = 100;

/** Answers 417; the body, if any, is left unread, so the connection closes. */
export function refuseExpectation(req: IncomingMessage, res: ServerResponse): void {
  const expect = String(req.headers.expect).slice(0, QUOTE_LIMIT);
  res.setHeader('connection', 'close');
  sendError(res, new MeshcarError('expectation_failed', `Expect: ${JSON.stringify(expect)} cannot be met; only 100-continue is supported`), { requestId: requestIdOf(req.headers) });
}
