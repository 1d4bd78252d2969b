// What failed dials may cost the outbound per endpoint (address and port). Our side parses every
// certificate an upstream presents and checks the chain's signatures, with keys the upstream
// made (tls-failures/costly-chains.ts): a hostile endpoint's chain cost 80-265 ms of CPU per
// dial, and an upstream's only endpoint (or every endpoint, all failed) is dialled again for each
// request that needs a session, and a WebSocket tunnel dials for each upgrade: 66-76 % of a core
// at 10-20 requests a second. So an endpoint's failed dials spend the budget the inbound keeps
// per caller (tls-failures/handshake-budgets.ts: a dial judged costly spends it all, others the
// bytes read beyond 2 KiB; once a failure has spent any, each dial in progress holds part of
// it), and a spent budget has the endpoint not dialled for 1 s, doubling up to 60 s: the dial
// fails at once (503 upstream_unavailable naming the wait, with Retry-After), for every upstream
// and tunnel that names the endpoint. A dial in progress for a second after it read more than a
// ServerHello (a handshake stalled after its certificates, charged only at the connect timeout)
// holds further dials back until it ends. A broken endpoint of the mesh (another CA's SVID, the
// wrong identity, an expired certificate) reports its certificates, is judged on them and spends
// nothing: it is dialled as often as before, so one bad pod behind a Service address never holds
// back the good ones (a flat hold after any certificate failure did: 5 s outages, reverted).

import type net from 'node:net';
import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { MeshcarError } from '../errors.js';
import { AddressPenalties } from '../tls-failures/handshake-budgets.js';
import { failedDialHandshake } from '../tls-failures/costly-chains.js';
import type { UpstreamEndpoint } from './endpoints.js';

/** A dial `begin` admitted: handed back to `end` once it is over. */
export interface DialTicket {
  readonly keys: readonly string[];
  readonly startedAt: number;
  tcp?: net.Socket;
}

/** More than a ServerHello read (as costly-chains.ts counts it): the server's certificates may have come. */
const PAST_SERVER_HELLO_BYTES = 256;
/** A dial past its ServerHello this long is stalled: a server's flight comes at once. */
const STALLED_AFTER_MS = 1_000;

export class DialBudgets {
  // dials in progress bounded only once a failure spent part of an endpoint's budget: a burst of
  // WebSocket tunnels to an upstream that never fails is dialled whole
  private readonly penalties = new AddressPenalties(() => performance.now(), false);
  private readonly inProgress = new Map<string, Set<DialTicket>>();

  constructor(private readonly logger: Logger) {}

  /**
   * A dial of `endpoint` is about to start: its ticket, or the error it fails with at once (the
   * endpoint is waiting out a spent budget, its dials in progress hold what is left of it, or one
   * of them stalled after the server's certificates).
   */
  begin(endpoint: UpstreamEndpoint): DialTicket | MeshcarError {
    const keys = [endpoint.key];
    const waiting = this.penalties.refused(keys);
    if (waiting !== undefined) return notDialled(endpoint, waiting.ms);
    const now = performance.now();
    for (const other of this.inProgress.get(endpoint.key) ?? []) {
      if (now - other.startedAt >= STALLED_AFTER_MS && (other.tcp?.bytesRead ?? 0) > PAST_SERVER_HELLO_BYTES) {
        return new MeshcarError('upstream_unavailable', `${endpoint.key} is not dialled now: a dial in progress there read its certificates ${Math.round(now - other.startedAt)} ms ago and has not finished its handshake (checking certificates can take the CPU)`, { retryAfterSeconds: 1 });
      }
    }
    if (!this.penalties.reserve(keys)) {
      const owed = this.penalties.owedMs(keys);
      if (owed > 0) return notDialled(endpoint, owed);
      return new MeshcarError('upstream_unavailable', `${endpoint.key} is not dialled now: its dials in progress already hold what is left of its failed handshakes' budget (certificates costly to check)`, { retryAfterSeconds: 1 });
    }
    const ticket: DialTicket = { keys, startedAt: now };
    let dials = this.inProgress.get(endpoint.key);
    if (dials === undefined) this.inProgress.set(endpoint.key, (dials = new Set()));
    dials.add(ticket);
    return ticket;
  }

  /** The dial's TCP socket, whose bytes read tell whether it stalled after the server's certificates. */
  dialling(ticket: DialTicket, tcp: net.Socket): void {
    ticket.tcp = tcp;
  }

  /**
   * The dial is over: connected (no `failed`), or its handshake failed on `failed` (its TLS
   * socket, over its own TCP socket); `refusedUnparsed` when the handshake gate refused the
   * server's certificates (or its bytes) before OpenSSL parsed them: the whole budget, as a
   * chain costly on its face.
   */
  end(endpoint: UpstreamEndpoint, ticket: DialTicket, failed?: TLSSocket, refusedUnparsed = false): void {
    this.penalties.release(ticket.keys);
    const dials = this.inProgress.get(endpoint.key);
    if (dials?.delete(ticket) && dials.size === 0) this.inProgress.delete(endpoint.key);
    if (failed === undefined) return;
    const cost = refusedUnparsed ? { bytes: ticket.tcp?.bytesRead ?? 0, costly: true } : failedDialHandshake(failed);
    const spent = this.penalties.failedHandshake(ticket.keys, cost.bytes, cost.costly);
    if (spent === undefined) return;
    const why = cost.costly ? 'a failed TLS handshake whose certificates were costly to check, or could not be seen after the server could send them' : `failed TLS handshakes beyond their budget (${cost.bytes} bytes read by the last)`;
    this.logger.warn({ endpoint: endpoint.key, waitMs: spent.ms, bytes: cost.bytes }, `upstream endpoint not dialled for ${spent.ms / 1000} s: ${why}`);
  }
}

function notDialled(endpoint: UpstreamEndpoint, ms: number): MeshcarError {
  const seconds = Math.ceil(ms / 1000);
  return new MeshcarError('upstream_unavailable', `${endpoint.key} is not dialled for ${seconds} s more: its failed TLS handshakes cost more than allowed (certificates costly to check)`, { retryAfterSeconds: seconds });
}
