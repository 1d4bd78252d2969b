// http2.codec meshcar: what the codec reports about one connection (a caller's on the inbound,
// an upstream's on the outbound), turned into the sidecar's metrics and logs. The codec has its
// own reset budget (rapid reset, MadeYouReset) and flood limits, so the inbound's ResetGuard is
// not attached to these connections (one guard, not two); a connection the codec closes for
// the peer's abuse or protocol violation is counted in
// meshcar_http2_sessions_closed_total{direction,reason} as the ResetGuard's closes are on the
// node codec. Stream errors (RST_STREAM we sent because of the peer) are counted in
// meshcar_http2_stream_errors_total{direction,reason} and logged at debug. The warn line of a
// closed session is rate-limited per peer (`closes`, one per window, the next says how many
// were left out): a caller (or upstream) breaking the protocol on a new connection each time
// would otherwise write a warn line per connection, as fast as it can handshake.

import type { Logger } from 'pino';
import { leftOut, leftOutFields, type LogPerKey } from '../log-per-key.js';
import type { H2Observer } from '../h2/index.js';
import type { Direction, SessionRejectReason, TrafficObserver } from '../metrics/traffic.js';

/** Close reasons that are the peer's fault; the rest (normal, peer_goaway, socket_error, destroyed, ping_timeout, internal_error) are not counted. */
const PEER_FAULTS: ReadonlySet<string> = new Set<SessionRejectReason>([
  'rapid_reset',
  'made_you_reset',
  'continuation_flood',
  'settings_flood',
  'ping_flood',
  'window_update_flood',
  'priority_flood',
  'empty_data_flood',
  'goaway_flood',
  'outbound_flood',
  'settings_timeout',
  'bad_preface',
  'protocol_error',
  'frame_size_error',
  'flow_control_error',
  'compression_error',
  'header_list_too_large',
  'stream_id_error',
  'stream_closed',
  'push_refused',
]);

/** The other side, as log lines name it. */
const PEER_ROLE: Readonly<Record<Direction, string>> = { inbound: 'the caller', outbound: 'the upstream' };

/** `closes`: the warn lines' limiter, one per listener or pool (every connection of a peer shares its key). */
export function h2SessionObserver(direction: Direction, traffic: TrafficObserver, logger: Logger, peer: string, remote: string | undefined, closes: LogPerKey): H2Observer {
  const closed = `${direction} HTTP/2 session closed: ${PEER_ROLE[direction]} broke the protocol or its limits`;
  const reset = `${direction} HTTP/2 stream reset: ${PEER_ROLE[direction]} broke a stream rule`;
  return {
    connectionClosed(reason, h2Code) {
      if (!PEER_FAULTS.has(reason)) return;
      // counted every time; logged once per peer and window (its identity or upstream, not
      // its address: one peer's connections come from any port and address)
      const through = closes.take(peer);
      if (through) logger.warn({ peer, remote, reason, h2Code, ...leftOutFields(through) }, `${closed}${leftOut(through, `sessions of ${peer} closed`)}`);
      traffic.sessionRejected?.(direction, reason as SessionRejectReason);
    },
    streamError(reason, h2Code) {
      logger.debug({ peer, remote, reason, h2Code }, reset);
      traffic.streamError?.(direction, reason);
    },
  };
}
