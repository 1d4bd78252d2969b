// Which open connection makes room for a new one at a server's connection cap (the CA's and the
// admin port's; connection-slots.ts keeps the books). In this order:
//  1. an idle one of the address holding the most, if that address holds more than one more
//     than the newcomer's: a few addresses cannot hold the cap against the others;
//  2. the oldest connection idle for a second or more, anyone's (a keep-alive connection quiet
//     since its last answer, or one that never sent anything: a real client sends its head
//     within milliseconds of connecting). Idle counts from the last answer, not the accept: a
//     kept-alive client between back-to-back requests is about to send its next one;
//  3. the oldest busy one of the address holding the most, under the same condition as 1: a
//     request in flight costs a client nothing where the server holds it (the admin port holds
//     each scrape up to 1 s for the next shared render), so eight addresses asking /metrics in a
//     loop kept every slot busy and the kubelet's probes were closed;
//  4. the newcomer's address's own oldest idle one (a client connecting again);
//  5. the oldest idle one, however young, of an address holding more than the newcomer's.
// Otherwise the newcomer is closed. A young idle connection is one still sending its first head
// (or its TLS handshake): it goes only at 5, so neither bare connects from one address (which
// replace their own at 4) nor a busy address (3; one that has just given a slot up to a probe
// and connects again holds no more than the probe's) close a probe that has just taken a slot,
// while connections renewed every few hundred milliseconds from many addresses, each holding
// one, still give way to a newcomer holding none (5). A connection lingering after an early
// answer (lingering-close.ts: the client still sends the body it reads the answer after) counts
// as busy: closed, its client got a reset and never read the answer; the linger's own bounds
// end it within seconds. The walk is over the open connections, at the cap only.

import type { Socket } from 'node:net';
import { isLingering } from './lingering-close.js';

/** An idle connection this young may still be sending its first head (or TLS handshake). */
export const YOUNG_MS = 1_000;

export interface Slot {
  inFlight: number;
  readonly address: string;
  /** performance.now() of the accept, then of the end of each last answer in flight. */
  idleSinceMs: number;
  /** The socket the HTTP server reads: the accepted one, or on TLS the TLS socket over it once its handshake is done. */
  served: Socket;
}

export interface Victim {
  readonly socket: Socket;
  /** It had a request in flight. */
  readonly busy: boolean;
}

/** The connection to close for a newcomer from `newcomer` (see above), or undefined: close the newcomer. `open` is oldest first. */
export function slotVictim(open: ReadonlyMap<Socket, Slot>, held: ReadonlyMap<string, number>, newcomer: string, nowMs: number): Victim | undefined {
  let largest: string | undefined;
  let most = 0;
  for (const [address, count] of held) {
    if (count > most) {
      most = count;
      largest = address;
    }
  }
  const newcomerHeld = held.get(newcomer) ?? 0;
  const overShare = largest !== undefined && most > newcomerHeld + 1;
  let largestIdle: Socket | undefined;
  let largestBusy: Socket | undefined;
  let oldIdle: Socket | undefined;
  let ownIdle: Socket | undefined;
  let biggerIdle: Socket | undefined;
  const oldBefore = nowMs - YOUNG_MS;
  for (const [socket, slot] of open) {
    if (slot.inFlight !== 0 || isLingering(slot.served)) {
      if (overShare && slot.address === largest) largestBusy ??= socket;
      continue;
    }
    if (overShare && slot.address === largest) largestIdle ??= socket;
    if (slot.idleSinceMs <= oldBefore) oldIdle ??= socket;
    if (slot.address === newcomer) ownIdle ??= socket;
    else if ((held.get(slot.address) ?? 0) > newcomerHeld) biggerIdle ??= socket;
  }
  if (largestIdle !== undefined) return { socket: largestIdle, busy: false };
  if (oldIdle !== undefined) return { socket: oldIdle, busy: false };
  if (largestBusy !== undefined) return { socket: largestBusy, busy: true };
  const idle = ownIdle ?? biggerIdle;
  return idle === undefined ? undefined : { socket: idle, busy: false };
}

/**
 * The connection to close for a newcomer from an address already holding its per-address cap:
 * that address's oldest with no request in flight, however young (as 4 above: a client
 * connecting again), or undefined: every one has a request in flight, and the newcomer is
 * closed. Refusing the newcomer outright let one local process hold the loopback address's
 * whole share with keep-alive connections asking /healthz every few seconds, and every other
 * process on the host (an exec probe, `curl POST /reload`, a sidecar's renewal) was closed.
 */
export function ownVictim(open: ReadonlyMap<Socket, Slot>, address: string): Socket | undefined {
  for (const [socket, slot] of open) {
    if (slot.address === address && slot.inFlight === 0 && !isLingering(slot.served)) return socket;
  }
  return undefined;
}
