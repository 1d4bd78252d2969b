// Requests the CA's HTTP parser refuses (a request line that is not HTTP, a head over Node's
// limit, a head or body that stops arriving) get the JSON error body of every other CA answer,
// with a stable code (400 bad_request, 431 headers_too_large, 408 request_timeout); Node's own
// answers are bare. Counted in meshcar_ca_requests_denied_total like any refused request.

import { maxHeaderSize } from 'node:http';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { rawErrorResponse } from '../http/status.js';
import { mayAnswer, parserRefusal, responseInProgress } from '../http/client-error.js';
import type { Metrics } from '../metrics/registry.js';

export function answerParserRefusals(server: Server, limits: { readonly headersTimeoutMs: number; readonly requestTimeoutMs: number }, metrics: Metrics, logger: Logger): void {
  const handshaken = new WeakSet<Socket>();
  server.on('secureConnection', (socket: Socket) => handshaken.add(socket));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // https.Server passes failed TLS handshakes on as client errors too: there is no HTTP to
    // answer in (an answer would wait for a handshake that never ends), so close, as Node does.
    // And a parse error pipelined behind an unanswered request: a refusal now would be read as
    // that request's answer (a body that stops arriving is this request's own timeout).
    if (!handshaken.has(socket) || !mayAnswer(err, socket) || (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' && responseInProgress(socket))) {
      socket.destroy();
      return;
    }
    const refusal = parserRefusal(err, {
      headTooLarge: `the request head is over the CA's limit of ${maxHeaderSize} bytes`,
      timedOut: `the request did not arrive in time (${limits.headersTimeoutMs / 1000} s for its head, ${limits.requestTimeoutMs / 1000} s in all)`,
    });
    metrics.caRequestsDenied.labels(refusal.code).inc();
    logger.debug({ code: err.code, remoteAddress: socket.remoteAddress }, 'CA request refused by the HTTP parser');
    socket.end(rawErrorResponse(refusal));
    socket.destroySoon();
  });
}
