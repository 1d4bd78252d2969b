// Where Upgrade requests (WebSocket) go when the app speaks h2c: nowhere. An h2c app reads
// HTTP/2 only, and a WebSocket over HTTP/2 needs extended CONNECT (RFC 8441), which meshcar does
// not speak toward its app. The Upgrade's HTTP/1.1 head sent anyway reached the app as a broken
// connection preface, and the caller read "the app sent a malformed response
// (HPE_INVALID_CONSTANT)", which said nothing of the cause. Refused as the app's answer would
// have come: after authorization, rate limits and the schema check, so a caller not allowed in
// learns nothing of the app.

import type { Exchange } from './exchange.js';
import type { AppForwarder } from './forwarder.js';

export const H2C_UPGRADE_REFUSAL: AppForwarder = {
  forward(exchange: Exchange): void {
    exchange.fail('bad_gateway', 'the app speaks h2c, which carries no Upgrade: a WebSocket needs an HTTP/1.1 app (inbound.app http://)');
  },
  close(): void {},
  refuseWaiting: () => 0,
};
