// The warning for a SPIFFE ID in the config that no meshcar sidecar carries. Every sidecar's own
// ID is spiffe://TRUST-DOMAIN/svc/SERVICE (the CA issues nothing else, and `identity.files` must
// hold that ID too), so an `authorize` entry such as spiffe://mesh.local/orders, or an upstream
// `identity` of that shape, is most likely a typo: the rule never matches (its callers get 403)
// or every call to the upstream fails its identity check. It stays valid, not refused: a caller
// or an upstream outside meshcar (SPIRE's spiffe://td/ns/NS/sa/SA, a proxy with its own SVID)
// may carry such an ID from another issuer of the trust bundle. `meshcar check` prints it, the
// sidecar's start and each reload log it, as config/connect-timeout-warning.ts does.

import { serviceNameOf, serviceNameProblem, tryParseSpiffeId } from '../identity/spiffe-id.js';
import type { SidecarConfig } from './sidecar-config.js';

/** One line per SPIFFE ID (an `authorize` entry, an upstream's `identity`) no meshcar sidecar carries; `file` as the user named it. */
export function workloadIdWarnings(config: SidecarConfig, file: string): string[] {
  const warnings: string[] = [];
  const shape = `every meshcar sidecar's ID is spiffe://${config.trustDomain}/svc/SERVICE`;
  (config.inbound?.authorize ?? []).forEach((rule, index) => {
    for (const id of rule.from) {
      const problem = namesNoSidecar(id);
      if (problem === undefined) continue;
      warnings.push(`${file}: inbound.authorize[${index}].from: ${JSON.stringify(id)} ${problem}, so this entry lets no meshcar sidecar call (${shape}); it is right only for a caller whose SVID comes from another issuer of the trust bundle`);
    }
  });
  for (const upstream of config.outbound?.upstreams ?? []) {
    const problem = namesNoSidecar(upstream.identity);
    if (problem === undefined) continue;
    warnings.push(`${file}: outbound.upstreams.${upstream.name}.identity: ${JSON.stringify(upstream.identity)} ${problem}, so a meshcar inbound there fails the identity check and every call gets 502 (${shape}); it is right only for an upstream that is not a meshcar sidecar`);
  }
  return warnings;
}

/** What keeps `id` (exact, or a prefix ending in /*) from matching spiffe://TD/svc/SERVICE; undefined when it can. */
function namesNoSidecar(id: string): string | undefined {
  const wildcard = id.endsWith('/*');
  const parsed = tryParseSpiffeId(wildcard ? id.slice(0, -2) : id);
  if (typeof parsed === 'string') return undefined; // refused as invalid already
  if (wildcard) {
    // spiffe://td/* and spiffe://td/svc/* match sidecars; anything deeper matches paths no SERVICE has
    return parsed.path === '' || parsed.path === '/svc' ? undefined : `matches only IDs under ${parsed.path}/`;
  }
  const service = serviceNameOf(parsed);
  if (service === undefined) return parsed.path.startsWith('/svc/') ? 'has more than one segment after /svc/' : 'has no /svc/ before the service name';
  const bad = serviceNameProblem(service);
  return bad === undefined ? undefined : `names no valid service (${bad})`;
}
