// The inbound side of the sidecar: terminate mutual TLS from peer sidecars, authorize the
// caller by SPIFFE ID, forward to the local app. The composition root uses only this file.

export { createInbound, type Inbound, type InboundLimits, type InboundOptions } from './inbound.js';
export { AuthorizationPolicy, type Grant } from './authorization.js';
