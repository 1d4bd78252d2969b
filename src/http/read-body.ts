// Reads a small request body (JSON APIs only; proxied bodies are streamed, never read here)
// with a hard size cap, so a client cannot make the process buffer without bound.

import type { IncomingMessage } from 'node:http';
import { MeshcarError } from '../errors.js';
import { clip } from '../clip.js';

/** A Content-Type quoted in a refusal is cut here: the sender does not size our answer or log line. */
const QUOTE_LIMIT = 256;

/**
 * The body, at most `limitBytes` (else 413 body_too_large). A connection that closes before the
 * body is whole (the client left, or the server's own request timeout answered and cut it) is
 * client_closed: Node's iterator throws a plain Error ('aborted', ECONNRESET), which callers took
 * for a fault of their own (`internal`).
 */
export async function readLimitedBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  refuseDeclaredSize(req, limitBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limitBytes) throw new MeshcarError('body_too_large', `request body exceeds the limit of ${limitBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof MeshcarError || !(req.destroyed || (err as NodeJS.ErrnoException).code === 'ECONNRESET')) throw err;
    throw new MeshcarError('client_closed', `the connection closed after ${size} bytes of the request body, before it was whole`, { cause: err });
  }
  return Buffer.concat(chunks, size);
}

/** 413 for a body whose declared Content-Length is over `limitBytes`: judged from the head alone. */
function refuseDeclaredSize(req: IncomingMessage, limitBytes: number): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) {
    throw new MeshcarError('body_too_large', `request body is ${declared} bytes; the limit is ${limitBytes}`);
  }
}

/**
 * What refuses a JSON body from its head alone (its declared size, its type): a server that
 * owes a client waiting on Expect: 100-continue its "go on" checks this first, so that client
 * hears the refusal instead of a 100 and then the refusal after its upload.
 */
export function refuseJsonHead(req: IncomingMessage, limitBytes: number): void {
  refuseDeclaredSize(req, limitBytes);
  const type = String(req.headers['content-type'] ?? 'application/json');
  if (!/^application\/json\b/i.test(type)) throw new MeshcarError('bad_request', `content-type must be application/json, got ${clip(type, QUOTE_LIMIT)}`);
}

export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  refuseJsonHead(req, limitBytes);
  const body = await readLimitedBody(req, limitBytes);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new MeshcarError('malformed_json', 'request body is not valid JSON');
  }
}
