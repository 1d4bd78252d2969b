// Every warning about a valid sidecar config that still deserves a change: a dial bound that
// eats the request timeout (connect-timeout-warning.ts), a SPIFFE ID no meshcar sidecar carries
// (workload-id-warning.ts), identity keys that identity.files leaves unused
// (files-identity-warning.ts), an outbound listener off loopback (outbound-listen-warning.ts), an
// inbound route an earlier one shadows (inbound-routes-warning.ts).
// `meshcar check` prints them; the sidecar's start and each reload
// log each once, at warn (component config).

import type { Logger } from 'pino';
import { connectTimeoutWarnings } from './connect-timeout-warning.js';
import { filesIdentityWarnings } from './files-identity-warning.js';
import { inboundRoutesWarnings } from './inbound-routes-warning.js';
import { outboundListenWarnings } from './outbound-listen-warning.js';
import type { SidecarConfig } from './sidecar-config.js';
import { workloadIdWarnings } from './workload-id-warning.js';

/** One line per thing to change, each naming `file` as the user named it and the key. */
export function configWarnings(config: SidecarConfig, file: string): string[] {
  return [...workloadIdWarnings(config, file), ...connectTimeoutWarnings(config, file), ...filesIdentityWarnings(config, file), ...outboundListenWarnings(config, file), ...inboundRoutesWarnings(config, file)];
}

/** The sidecar's start and reload: each warning once, on the log. */
export function logConfigWarnings(config: SidecarConfig, file: string, logger: Logger): void {
  for (const warning of configWarnings(config, file)) logger.warn({ component: 'config' }, warning);
}
