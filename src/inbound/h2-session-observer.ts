// http2.codec meshcar: what the codec reports about one caller's connection, turned into the
// sidecar's metrics and logs. The codec has its own reset budget (rapid reset, MadeYouReset)
// and flood limits, so the inbound's ResetGuard is not attached to these connections (one
// guard, not two); a connection the codec closes for the peer's abuse or protocol violation
// is counted in meshcar_http2_sessions_closed_total{direction="inbound",reason} as the
// ResetGuard's closes are on the node codec.
// Stream errors (RST_STREAM we sent because of the peer) are counted in
// meshcar_http2_stream_errors_total{direction="inbound",reason} and logged at debug.

import type { Logger } from 'pino';
import type { H2Observer } from '../h2/index.js';
import type { SessionRejectReason, TrafficObserver } from '../metrics/traffic.js';

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

export function callerSessionObserver(traffic: TrafficObserver, logger: Logger, peer: string, remote: string | undefined): H2Observer {
  return {
    connectionClosed(reason, h2Code) {
      if (!PEER_FAULTS.has(reason)) return;
      logger.warn({ peer, remote, reason, h2Code }, 'inbound HTTP/2 session closed: the caller broke the protocol or its limits');
      traffic.sessionRejected?.('inbound', reason as SessionRejectReason);
    },
    streamError(reason, h2Code) {
      logger.debug({ peer, remote, reason, h2Code }, 'inbound HTTP/2 stream reset: the caller broke a stream rule');
      traffic.streamError?.('inbound', reason);
    },
  };
}
