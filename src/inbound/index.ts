// The inbound side of the sidecar: terminate mutual TLS from peer sidecars, authorize the
// caller by SPIFFE ID, forward to the local app. The composition root uses only this file.

import type { InboundConfig } from '../config/inbound-config.js';
import { AuthorizationPolicy } from './authorization.js';
import { InboundTimeouts } from './timeouts.js';

export { createInbound } from './inbound.js';
export type { Inbound, InboundLimits, InboundOptions } from './inbound-contract.js';
export { AuthorizationPolicy, type Grant } from './authorization.js';

/**
 * Builds a reload's live inbound settings once and drops them: throws what setAuthorization or
 * setTimeouts would, so a reload is refused before any process applies any part of it.
 */
export function checkLiveInbound(config: InboundConfig): void {
  AuthorizationPolicy.compile(config.authorize);
  new InboundTimeouts({ timeoutMs: config.timeoutMs, idleTimeoutMs: config.idleTimeoutMs, routes: config.routes });
}
