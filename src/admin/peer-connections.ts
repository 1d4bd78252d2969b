// What one peer address may hold of the admin port, and the log lines when it is at its share.
// The admin port may listen on every address (kubelet's probes and Prometheus come from outside
// the pod), so any pod of the cluster reaches it, and ADMIN_MAX_CONNECTIONS alone let one of
// them take every slot: 256 keep-alive connections asking GET /healthz every few seconds are
// never idle long, never pipelined and never timed out, and every new connection (the
// kubelet's liveness probe, Prometheus) was closed as it came (probes failed 24 of 24 in 25 s),
// so the kubelet restarted a healthy pod. The share is kept by src/http/connection-slots.ts: at
// it, the peer's own oldest connection with no request in flight makes room for its new one,
// since every local process shares 127.0.0.1 (closing the newcomer let one of them shut out the
// exec probes, `curl POST /reload` and `meshcar doctor`); only a peer whose every connection
// has a request in flight has its new one closed. At most one line per peer per window.

import type { Logger } from 'pino';
import { LogPerKey, leftOut } from '../log-per-key.js';
import type { SlotEvents } from '../http/connection-slots.js';

/**
 * Connections one peer address may hold open at once. A scraper holds one, the kubelet one per
 * probe, a browser through `kubectl port-forward` (loopback) six: far below; and an eighth of
 * ADMIN_MAX_CONNECTIONS, so one peer leaves most slots to the others.
 */
export const ADMIN_MAX_CONNECTIONS_PER_PEER = 32;

/** The warn lines for a peer at its share of `max` connections, at most one per peer per window. */
export function peerShareEvents(max: number, logger: Logger): Pick<SlotEvents, 'evictedOwn' | 'refusedOwn'> {
  const lines = new LogPerKey();
  const warn = (peer: string, message: string) => {
    const through = lines.take(peer);
    if (through) logger.warn({ remote: peer }, `${message}${leftOut(through, `from ${peer}`)}`);
  };
  return {
    evictedOwn: (peer) => warn(peer, `admin connection closed: ${peer} had ${max} open (at most ${max} per peer address); its oldest with no request in flight made room for its new one`),
    refusedOwn: (peer) => warn(peer, `admin connection refused: ${peer} has ${max} open already, each with a request in flight (at most ${max} per peer address)`),
  };
}
