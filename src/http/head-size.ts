// The real size of an HTTP/1.x request head, for a server that promises 431 to a head over its
// maxHeaderSize (the CA, the admin port, the inbound's HTTP/1.1 callers: 16 KiB by default). Node's parser
// counts only the request target and the fields' names and values against that limit: 16,000
// empty `X:` lines (64 KB), or one field with 1 MiB of whitespace before its value, were served.
// Two bounds close the gap, each a lower bound of the bytes the head took, so a head within the
// limit is never refused:
// - its lines as written without optional whitespace (request line, `name:value` and CRLF each),
//   with the count of fields Node keeps raised so that it cuts no list short (keepEveryHeadLine);
// - the bytes the connection read up to the moment the head was whole, less one read's worth
//   (what Node read past the head's end in the same read: at most 16 KiB of TLS plaintext, 64 KiB
//   from TCP). Whitespace padding is caught so once it passes that slack (a 1 MiB value is;
//   one of a few KiB more than the limit is not). A pipelined head, read while the request
//   before it is unfinished, is judged by its lines only.

import { maxHeaderSize, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** The most Node hands the parser at once: libuv's TCP reads, and TLS plaintext (Node's TLSWrap reads it 16 KiB at a time). */
const TCP_READ_BYTES = 64 * 1024;
const TLS_READ_BYTES = 16 * 1024;

/** Of the latest request read on a connection: bytesRead once it ended (its body whole), undefined while it is unfinished. */
interface ConnectionReads {
  endedAt: number | undefined;
}

const reads = new WeakMap<Socket, ConnectionReads>();

/**
 * Sets how many fields Node keeps of a head (its maxHeadersCount, 2000 by default, past which it
 * drops them unseen) to one more than a head Node's parser takes can hold: it counts only names
 * and values against the byte limit, and a field has at least a one-byte name (`X:`), so a head
 * it takes has at most that many fields, and every one is kept. Every server that reads requests
 * needs it, not only those that count their heads' bytes as written (headSizeProblem): Node's
 * parser still frames the body by a Content-Length or Transfer-Encoding past the last field it
 * keeps while leaving it out of req.headers, so a forwarder would pass on a body its request no
 * longer announces (a limit of bytes / 4, the shortest line as written, still let 4,096 `X:`
 * lines and then a Content-Length through a 16 KiB head).
 */
export function keepEveryHeadLine(server: { maxHeadersCount: number | null }, headLimitBytes: number = maxHeaderSize): void {
  server.maxHeadersCount = headLimitBytes + 1;
}

/**
 * Why a request's head is over maxHeaderSize (431 headers_too_large), or undefined. Called as
 * the request arrives (in its 'request' listener, synchronously): it reads the connection's byte
 * count as it is then. The server keeps every line (keepEveryHeadLine).
 */
export function headSizeProblem(req: IncomingMessage, limit: number = maxHeaderSize): string | undefined {
  const socket = req.socket;
  const before = reads.get(socket);
  const entry: ConnectionReads = { endedAt: undefined };
  reads.set(socket, entry);
  req.once('end', () => {
    entry.endedAt = socket.bytesRead;
  });
  // the first head on the connection starts at 0 (TLS: bytesRead counts plaintext, not the handshake)
  const start = before === undefined ? 0 : before.endedAt;
  const slack = (socket as Socket & { encrypted?: boolean }).encrypted === true ? TLS_READ_BYTES : TCP_READ_BYTES;
  const read = start === undefined ? 0 : socket.bytesRead - start - slack;
  const bytes = Math.max(lineBytes(req), read);
  return bytes > limit ? `the request head is over the limit of ${limit} bytes (${bytes} or more, counting its lines and whitespace)` : undefined;
}

const measured = new WeakMap<IncomingMessage, string>();

/**
 * headSizeProblem, taken as the request arrives (its 'request' listener) and kept for its turn:
 * a server that handles pipelined requests one at a time (the inbound) reaches a later one when
 * the connection's byte count no longer says anything of its head.
 */
export function measureHead(req: IncomingMessage, limit: number): void {
  const problem = headSizeProblem(req, limit);
  if (problem !== undefined) measured.set(req, problem);
}

/** What measureHead found of the request's head: why it is over the limit, or undefined. */
export function measuredHeadProblem(req: IncomingMessage): string | undefined {
  return measured.get(req);
}

/** The head's bytes as written with no optional whitespace: request line, field lines, the empty line. */
function lineBytes(req: IncomingMessage): number {
  // METHOD SP target SP HTTP/x.y CRLF
  let bytes = (req.method ?? '').length + 1 + (req.url ?? '').length + 1 + 8 + 2;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) bytes += (raw[i] as string).length + 1 + (raw[i + 1] as string).length + 2;
  return bytes + 2;
}
