// A stream its upstream reset with ENHANCE_YOUR_CALM before answering it, for the attempt
// controller (attempt-stream-ends.ts): the peer calls the session's traffic excessive, and a
// Node http2 server (an upstream sidecar on `http2.codec: node`, a Node app) does so for every
// new stream of a session once about 10 MB of answer bytes it had queued on streams its client
// reset count against that session's memory (Node 20's maxSessionMemory), until it has refused
// 100 streams and ends the session. Kept in the pool, such a session had every request that
// found it answered 502 (a hundred in a row with one endpoint). It takes no new stream now (it
// closes once the streams on it end) and the next request opens another. Which side reset the
// stream: src/h2 says (reset_by_peer); Node's core http2 does not (its own refusal of an answer
// head over 256 fields is the same code), so on that codec any such reset retires the session.

import type { ClientHttp2Session } from 'node:http2';
import type { H2Stream } from '../h2/index.js';
import { sessionOf } from './goaway-refused.js';
import type { UpstreamPool } from './upstream-pool.js';
import type { UpstreamStream } from './upstream-stream.js';

/** Whether the ENHANCE_YOUR_CALM reset of `up` (the stream's own, resetItself) may be the peer's. */
export function calmedByPeer(up: UpstreamStream, err: unknown = up.errored): boolean {
  if ('pending' in up) return true; // core http2 (H2Stream has no `pending`): the peer's or its own, unknown
  return (err as { reason?: unknown } | null | undefined)?.reason === 'reset_by_peer';
}

/** The session `up` was made on takes no new streams: it closes once those in flight end. */
export function retireSessionOf(pool: UpstreamPool, up: UpstreamStream): void {
  if ('pending' in up) {
    const session = sessionOf(up) as ClientHttp2Session | undefined;
    if (session !== undefined) pool.nodeKit?.closeGracefully(session);
    return;
  }
  pool.own?.closeSessionOf(up as unknown as H2Stream);
}
