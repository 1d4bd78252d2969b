// The warning for an outbound listener that is not on loopback (0.0.0.0, [::], a routable
// address or a host name): a valid config, but the outbound takes plain HTTP from anyone and
// calls upstreams with this sidecar's SVID, so any peer that reaches the port acts as this
// service (the reviewer's peer on fd00::2 was relayed to upstream a as svc/b). The admin port
// keeps its sensitive paths to loopback peers; the outbound has no caller to check, so the
// README has it listen on loopback. `meshcar check` prints it, the sidecar's start and each
// reload log it once (config-warnings.ts).

import { canonicalHost, formatHostPort, isLoopbackAddress } from './address.js';
import type { SidecarConfig } from './sidecar-config.js';

/** 127.0.0.0/8 and ::1 in any spelling (`0:0:0:0:0:0:0:1`, `::ffff:127.0.0.1`: canonicalHost), or localhost. */
function isLoopbackHost(host: string): boolean {
  const canonical = canonicalHost(host);
  // localhost and its subdomains resolve to loopback (RFC 6761 §6.3); any other name may not
  return isLoopbackAddress(canonical) || canonical === 'localhost' || canonical.endsWith('.localhost');
}

/** One line when outbound.listen is not a loopback address; `file` as the user named it. */
export function outboundListenWarnings(config: SidecarConfig, file: string): string[] {
  const listen = config.outbound?.listen;
  if (listen === undefined || isLoopbackHost(listen.host)) return [];
  return [
    `${file}: outbound.listen: ${formatHostPort(listen)} is not a loopback address: any peer that reaches it calls the upstreams as ${config.spiffeId}, this sidecar's identity; listen on 127.0.0.1 or [::1]`,
  ];
}
