// What failed dials may cost the outbound per endpoint address. Our side checks every signature
// of the chain an upstream presents, with keys the upstream made (tls-failures/costly-chains.ts):
// a hostile endpoint's chain cost 80-245 ms of CPU per dial, and an upstream's only endpoint (or
// every endpoint, all failed) is dialled again for each request that needs a session, which took
// 66-76 % of a core at 10-20 requests a second. So the failed handshakes of an endpoint's address
// spend the budget the inbound keeps per caller (tls-failures/handshake-budgets.ts: bytes read
// beyond the first 2 KiB of each failed dial, a chain costly on its face spends it all; once a
// failure has spent any, each dial in progress holds part of it), and a spent budget has the
// address not dialled for 1 s, doubling up to 60 s: the dial fails at once (503
// upstream_unavailable naming the wait), for every upstream and tunnel that names the address.
// A broken endpoint of the mesh (another CA's SVID, the wrong identity, an expired certificate)
// reads a handshake of ~1.5 KB and spends nothing: it is dialled as often as before, so one bad
// pod behind a Service address never holds back the good ones (a flat hold after any certificate
// failure did: 5 s outages, reverted).

import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { MeshcarError } from '../errors.js';
import { addressKeys, AddressPenalties } from '../tls-failures/handshake-budgets.js';
import { costlyToCheck, failedHandshakeBytes } from '../tls-failures/costly-chains.js';
import { presentedChainOf } from '../tls-failures/peer-certificate.js';
import type { UpstreamEndpoint } from './endpoints.js';

/** A dial `begin` admitted: handed back to `end` once it is over. */
export interface DialTicket {
  readonly keys: readonly string[];
}

export class DialBudgets {
  // dials in progress bounded only once a failure spent part of an address's budget: a burst of
  // WebSocket tunnels to an upstream that never fails is dialled whole
  private readonly penalties = new AddressPenalties(() => performance.now(), false);

  constructor(private readonly logger: Logger) {}

  /**
   * A dial of `endpoint` is about to start: its ticket, or the error it fails with at once (the
   * address is waiting out a spent budget, or its dials in progress hold what is left of it).
   */
  begin(endpoint: UpstreamEndpoint): DialTicket | MeshcarError {
    const keys = addressKeys(endpoint.address);
    const waiting = this.penalties.refused(keys);
    if (waiting !== undefined) {
      const seconds = Math.ceil(waiting.ms / 1000);
      return new MeshcarError('upstream_unavailable', `${endpoint.key} is not dialled for ${seconds} s more: its failed TLS handshakes cost more than allowed (certificate chains costly to check)`, { retryAfterSeconds: seconds });
    }
    if (!this.penalties.reserve(keys)) {
      return new MeshcarError('upstream_unavailable', `${endpoint.key} is not dialled now: its dials in progress already hold what is left of its failed handshakes' budget (certificate chains costly to check)`);
    }
    return { keys };
  }

  /** The dial is over: connected (no `failure`), or failed with `failure` on `socket` (its TLS socket, over its own TCP socket). */
  end(endpoint: UpstreamEndpoint, ticket: DialTicket, failure?: { err: { code?: string }; socket: TLSSocket }): void {
    this.penalties.release(ticket.keys);
    if (failure === undefined) return;
    const bytes = failedHandshakeBytes(failure.err, failure.socket);
    const presented = presentedChainOf(failure.socket);
    const costly = presented !== undefined && costlyToCheck(presented);
    const spent = this.penalties.failedHandshake(ticket.keys, bytes, costly);
    if (spent === undefined) return;
    const why = costly ? 'a certificate chain that failed verification and was costly to check (more certificates than a mesh SVID path, or a key no SVID holds)' : `failed TLS handshakes beyond their budget (${bytes} bytes read by the last)`;
    this.logger.warn({ endpoint: endpoint.key, address: spent.key, waitMs: spent.ms, bytes }, `upstream endpoint not dialled for ${spent.ms / 1000} s: ${why}`);
  }
}
