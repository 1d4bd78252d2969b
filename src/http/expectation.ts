// An Expect field a sidecar's HTTP/1.1 listener cannot meet (anything but 100-continue, or
// 100-continue beside another expectation): the error of our 417 (RFC 9110 §10.1.1), a JSON
// refusal as every other, where Node's own answer is a bare status line. Answered and recorded
// as any refusal by the outbound's forwarder and the inbound's exchange; the CA and the admin
// port answer it with refuseUnmetExpectations.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { MeshcarError } from '../errors.js';
import { sendError } from './status.js';

/** The expectation quoted in the refusal is cut here: the sender does not size our answer. */
const QUOTE_LIMIT = 100;

/** The 417's error: the expectation quoted, cut at QUOTE_LIMIT. */
export function expectationError(req: IncomingMessage): MeshcarError {
  const expect = String(req.headers.expect).slice(0, QUOTE_LIMIT);
  return new MeshcarError('expectation_failed', `Expect: ${JSON.stringify(expect)} cannot be met; only 100-continue is supported`);
}


/**
 * Answers, on a plain node:http(s) server, each request whose Expect it cannot meet with the JSON
 * 417 instead of Node's bare one; `refused` is told each (the CA counts it as a denial).
 */
export function refuseUnmetExpectations(server: Pick<Server, 'on'>, refused?: (error: MeshcarError) => void): void {
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const error = expectationError(req);
    refused?.(error);
    // its body is not read: the connection closes, as after any refusal before the body
    if (!req.complete) res.setHeader('connection', 'close');
    sendError(res, error);
  });
}
