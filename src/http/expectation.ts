// An Expect field a sidecar's HTTP/1.1 listener cannot meet (anything but 100-continue, or
// 100-continue beside another expectation): the error of our 417 (RFC 9110 §10.1.1), a JSON
// refusal as every other, where Node's own answer is a bare status line. Answered and recorded
// as any refusal by the outbound's forwarder and the inbound's exchange.

import type { IncomingMessage } from 'node:http';
import { MeshcarError } from '../errors.js';

/** The expectation quoted in the refusal is cut here: the sender does not size our answer. */
const QUOTE_LIMIT = 100;

/** The 417's error: the expectation quoted, cut at QUOTE_LIMIT. */
export function expectationError(req: IncomingMessage): MeshcarError {
  const expect = String(req.headers.expect).slice(0, QUOTE_LIMIT);
  return new MeshcarError('expectation_failed', `Expect: ${JSON.stringify(expect)} cannot be met; only 100-continue is supported`);
}

