// Requests the CA's HTTP parser refuses (a request line that is not HTTP, a head over Node's
// limit, a head or body that stops arriving) get the JSON error body of every other CA answer,
// with a stable code (400 bad_request, 431 headers_too_large, 408 request_timeout); Node's own
// answers are bare. Counted in meshcar_ca_requests_denied_total like any refused request. So
// does a CONNECT (405), which Node drops without an answer, and an Expect other than
// 100-continue (417 expectation_failed), which Node answers with a bare status line. Any answer
// that closes the connection while the client is still sending (these, a 413 to a body declared
// too large, a 401 before the body) lingers (src/http/lingering-close.ts): a client that sends
// its whole request before it reads gets the answer, not a reset. What the parser answered on a
// connection is kept for the request handler, whose body read ends when the connection does
// (a sign request cut by its 408 is counted once, as request_timeout).

import { maxHeaderSize } from 'node:http';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { MeshcarError } from '../errors.js';
import { refuseAndClose, refuseConnectMethod } from '../http/client-error.js';
import type { Metrics } from '../metrics/registry.js';
import { countCaDenial } from './denial-reasons.js';
import { refuseUnmetExpectations } from '../http/expectation.js';
import { lingerWhenClosedEarly } from '../http/lingering-close.js';

/** The refusal the parser answered on a connection (counted already), or undefined. */
export type ParserRefusalOf = (socket: Socket) => MeshcarError | undefined;

export function answerParserRefusals(server: Server, limits: { readonly headersTimeoutMs: number; readonly requestTimeoutMs: number }, metrics: Metrics, logger: Logger): ParserRefusalOf {
  const handshaken = new WeakSet<Socket>();
  const answered = new WeakMap<Socket, MeshcarError>();
  server.on('secureConnection', (socket: Socket) => {
    handshaken.add(socket);
    // the HTTP parser serves the TLS socket: its close after an early answer lingers
    lingerWhenClosedEarly(socket);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // https.Server passes failed TLS handshakes on as client errors too: there is no HTTP to
    // answer in (an answer would wait for a handshake that never ends), so close, as Node does
    if (!handshaken.has(socket)) {
      socket.destroy();
      return;
    }
    const refusal = refuseAndClose(err, socket, {
      headTooLarge: `the request head is over the CA's limit of ${maxHeaderSize} bytes`,
      timedOut: `the request did not arrive in time (${limits.headersTimeoutMs / 1000} s for its head, ${limits.requestTimeoutMs / 1000} s in all)`,
    });
    if (refusal === undefined) return;
    answered.set(socket, refusal);
    countCaDenial(metrics, refusal.code);
    logger.debug({ code: err.code, remoteAddress: socket.remoteAddress }, 'CA request refused by the HTTP parser');
  });
  refuseConnectMethod(server, 'GET, HEAD, POST', (refusal) => countCaDenial(metrics, refusal.code));
  refuseUnmetExpectations(server, (refusal) => countCaDenial(metrics, refusal.code));
  return (socket) => answered.get(socket);
}
