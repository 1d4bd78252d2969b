// A bound on the requests one admin connection has in flight. Node's HTTP server parses every
// request a client pipelines in one write and hands each to the handler at once, queueing the
// answers until the client reads the earlier ones: a client that writes a thousand GET /metrics
// and never reads made the sidecar render and hold a thousand pages (RSS 73 → 700 MB in 4 s,
// the data plane stalled), and the idle sweep never fired, the queued answers counting as work.
// Beyond `max` requests whose responses have not finished, the connection is closed: nothing
// more is answered on it (no scraper or browser pipelines; curl does not).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Requests in flight on one admin connection (responses not yet finished) beyond which it is closed. */
export const ADMIN_MAX_PIPELINED = 4;

export class PipelineBound {
  private readonly open = new WeakMap<Socket, number>();

  /** `onCut`: told once per connection closed, to log it. */
  constructor(
    private readonly max: number,
    private readonly onCut: (socket: Socket) => void,
  ) {}

  /** Whether to answer `req`: false once its connection has too many in flight (then it is closed) or is gone. */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    // the rest of a pipelined write Node parses after the cut: not answered, not logged again
    if (socket.destroyed) return false;
    const inFlight = (this.open.get(socket) ?? 0) + 1;
    if (inFlight > this.max) {
      this.onCut(socket); // first: a destroyed socket no longer knows its peer's address
      socket.destroy();
      return false;
    }
    this.open.set(socket, inFlight);
    res.once('close', () => this.open.set(socket, (this.open.get(socket) ?? 1) - 1));
    return true;
  }
}
