// The inbound's HTTP/1.1 server (Node's): its limits (head size, slowloris timeout, keep-alive)
// and the wiring of its events to request-dispatch.ts, each request in its connection's turn
// (src/http/pipelined-turns.ts). It never listens itself: the TLS listener (inbound.ts) hands
// it the sockets whose ALPN chose HTTP/1.1. The handlers are made once, here, per listener.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { closeAfterHttp10Coding } from '../http/body-framing.js';
import { keepEveryHeadLine, measureHead } from '../http/head-size.js';
import { lingerWhenClosedEarly } from '../http/lingering-close.js';
import { inTurn } from '../http/pipelined-turns.js';
import type { InboundListener } from './inbound.js';
import { cutPipelining, onClientError, onConnect, onHttp1Request, onUnmetExpectation, onUpgrade } from './request-dispatch.js';

type Start = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP/1.1 request in its connection's turn, or the connection closed past maxPipelined (pipelined-turns.ts). */
function startInTurn(listener: InboundListener, req: IncomingMessage, res: ServerResponse, start: Start): void {
  if (!inTurn(req, res, start, listener.maxPipelined)) cutPipelining(listener, req.socket);
}

export function createHttp1Server(listener: InboundListener, maxHeaderBytes: number, headersTimeout: number, keepAliveTimeout: number): http.Server {
  const server = http.createServer({
    maxHeaderSize: maxHeaderBytes,
    // a caller that trickles its request head (slowloris) is cut off: 408
    headersTimeout,
    // bodies may stream for as long as the two ends like (uploads, long polls)
    requestTimeout: 0,
    keepAliveTimeout,
    // how often Node checks headersTimeout: a quarter of it, between 250 ms and 5 s
    connectionsCheckingInterval: Math.min(5_000, Math.max(250, headersTimeout / 4)),
    noDelay: true,
    // a missing Host is refused by request-dispatch.ts, as a JSON error (Node's answer is a bare 400)
    requireHostHeader: false,
  });
  // every line of a head within maxHeaderBytes is kept (Node's default cut at 2000 lost a framing field past it)
  keepEveryHeadLine(server, maxHeaderBytes);
  // a request pipelined behind another waits for its answer (src/http/pipelined-turns.ts)
  const request = (req: IncomingMessage, res: ServerResponse) => onHttp1Request(listener, req, res, false);
  // each head measured as it arrives, as written (Node's parser counts only names and values
  // against maxHeaderBytes: 15,000 empty `X:` lines, 60 KB, went to the app): 431 in its turn
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    measureHead(req, maxHeaderBytes);
    closeAfterHttp10Coding(req, res);
    startInTurn(listener, req, res, request);
  });
  // an `Expect: 100-continue` request: the app, not the sidecar, decides whether to continue
  const continued = (req: IncomingMessage, res: ServerResponse) => onHttp1Request(listener, req, res, true);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    measureHead(req, maxHeaderBytes);
    startInTurn(listener, req, res, continued);
  });
  // any other Expect: our 417, as the outbound's (Node's would be bare)
  const unmet = (req: IncomingMessage, res: ServerResponse) => onUnmetExpectation(listener, req, res);
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    measureHead(req, maxHeaderBytes);
    startInTurn(listener, req, res, unmet);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    measureHead(req, maxHeaderBytes);
    onUpgrade(listener, req, socket, head);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => onClientError(listener, err, socket));
  // without a listener Node drops a CONNECT's connection with no answer at all
  server.on('connect', (req: IncomingMessage, socket: Socket) => onConnect(listener, req, socket));
  // an answer that closes the connection while the caller is still sending reaches it (lingering-close.ts)
  server.on('connection', lingerWhenClosedEarly);
  // This server never listens itself: the TLS listener hands it sockets. Node starts the
  // headersTimeout checks and connection tracking on 'listening', so announce it once.
  server.emit('listening');
  return server;
}
