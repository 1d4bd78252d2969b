// Every map of a sidecar config by where it stands, with its keys: the readers take them from
// here or from their own file, and src/config/misplaced-keys.ts looks a key up in all of them
// to tell one written at the wrong level where it goes.

import { HTTP1_KEYS } from './http1-config.js';
import { HTTP2_KEYS } from './http2-config.js';
import { IDENTITY_CA_KEYS, IDENTITY_FILES_KEYS, IDENTITY_SECTION_KEYS, RENEWAL_KEYS } from './identity-config.js';
import { AUTHORIZE_RULE_KEYS, INBOUND_KEYS, INBOUND_RATE_LIMIT_KEYS, INBOUND_ROUTE_KEYS, RATE_SPEC_KEYS } from './inbound-config.js';
import { INBOUND_LIMITS_KEYS } from './inbound-limits-config.js';
import type { Sections } from './misplaced-keys.js';
import { OPENAPI_KEYS } from './openapi-config.js';
import { OUTBOUND_KEYS, UPSTREAM_KEYS } from './outbound-config.js';
import { BACKOFF_KEYS, BALANCER_KEYS, CIRCUIT_BREAKER_KEYS, OUTLIER_DETECTION_KEYS, RETRIES_KEYS, RETRY_BUDGET_KEYS } from './upstream-policy-config.js';

export const KEYS: readonly string[] = ['service', 'trustDomain', 'identity', 'inbound', 'outbound', 'admin', 'log', 'metrics', 'drainTimeout', 'http2', 'http1', 'workers'];
export const ADMIN_KEYS: readonly string[] = ['listen', 'hosts'];
export const LOG_KEYS: readonly string[] = ['level', 'access'];
export const METRICS_KEYS: readonly string[] = ['requests'];

const UPSTREAM = 'outbound.upstreams.<name>';

export const SECTIONS: Sections = {
  '': KEYS,
  identity: IDENTITY_SECTION_KEYS,
  'identity.ca': IDENTITY_CA_KEYS,
  'identity.files': IDENTITY_FILES_KEYS,
  'identity.renewal': RENEWAL_KEYS,
  inbound: INBOUND_KEYS,
  'inbound.routes[]': INBOUND_ROUTE_KEYS,
  'inbound.authorize[]': AUTHORIZE_RULE_KEYS,
  'inbound.rateLimit': INBOUND_RATE_LIMIT_KEYS,
  'inbound.rateLimit.perIdentity': RATE_SPEC_KEYS,
  'inbound.rateLimit.total': RATE_SPEC_KEYS,
  'inbound.limits': INBOUND_LIMITS_KEYS,
  'inbound.openapi': OPENAPI_KEYS,
  outbound: OUTBOUND_KEYS,
  [UPSTREAM]: UPSTREAM_KEYS,
  [`${UPSTREAM}.retries`]: RETRIES_KEYS,
  [`${UPSTREAM}.retries.budget`]: RETRY_BUDGET_KEYS,
  [`${UPSTREAM}.retries.backoff`]: BACKOFF_KEYS,
  [`${UPSTREAM}.balancer`]: BALANCER_KEYS,
  [`${UPSTREAM}.circuitBreaker`]: CIRCUIT_BREAKER_KEYS,
  [`${UPSTREAM}.outlierDetection`]: OUTLIER_DETECTION_KEYS,
  [`${UPSTREAM}.openapi`]: OPENAPI_KEYS,
  admin: ADMIN_KEYS,
  log: LOG_KEYS,
  metrics: METRICS_KEYS,
  http2: HTTP2_KEYS,
  http1: HTTP1_KEYS,
};
