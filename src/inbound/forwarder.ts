// The one seam between the inbound handler and the local app: an exchange goes in, the app's
// answer (or the sidecar's error) comes out through the exchange. One implementation per app
// protocol (http:// → app-http1.ts, h2c:// → app-h2c.ts).

import type { Exchange } from './exchange.js';

export interface AppForwarder {
  /** Sends the exchange's request to the app (its head from app-headers.ts) and relays the answer. */
  forward(exchange: Exchange): void;
  /** Closes pooled connections to the app. */
  close(): void;
  /**
   * A drain out of time: the requests still waiting for a connection or a stream slot to the
   * app are refused as never processed (Exchange.refuseUnsent); returns how many.
   */
  refuseWaiting(): number;
}
