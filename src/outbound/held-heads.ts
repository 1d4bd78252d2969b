// An HTTP/1.1 answer's head is held until the first byte of its body (forward-http1.ts): one
// write for both, and a cut between them still answered with our error. The hold must not
// outlast the event-loop turn that brought the head: an app that sends its head and then waits
// (Server-Sent Events, a long poll) must have it now, as a client's EventSource `onopen` or a
// time-to-head limit (Go's ResponseHeaderTimeout) waits on it. A body that came in the same
// socket read as the head (the usual case) was relayed within that turn, before the check phase,
// so the held head went with it and the check finds nothing. One setImmediate per turn for all
// the heads of that turn, not a timer per request.

/** What holds a head: released (written to node:http) and flushed at the turn's end if still held. */
export interface HeldHead {
  holdsHead(): boolean;
  /** Writes the held head and sends it (node:http otherwise waits for the first body write). */
  sendHeldHead(): void;
}

const held: HeldHead[] = [];
let scheduled = false;

function releaseTurnsHeads(): void {
  scheduled = false;
  // a head released here can lead to more work, never to a new hold of this turn's list
  const heads = held.splice(0, held.length);
  for (const head of heads) if (head.holdsHead()) head.sendHeldHead();
}

/** To be checked at the end of this turn (setImmediate runs after the poll phase's reads). */
export function releaseAtTurnEnd(head: HeldHead): void {
  held.push(head);
  if (!scheduled) {
    scheduled = true;
    setImmediate(releaseTurnsHeads);
  }
}
