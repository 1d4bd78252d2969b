// The warning for an upstream whose dial bound is not below its request timeout: a valid config
// (it is not refused), but a dial toward an endpoint that takes TCP and never finishes TLS then
// takes the whole `timeout`, and the request gets 504 although a healthy endpoint exists (the
// dial's bound is min(connectTimeout, timeout): README, "Retries"). `meshcar check` prints it,
// the sidecar's start and each reload log it once per upstream (config-warnings.ts).

import { formatDuration } from './duration.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, MIN_CONNECT_TIMEOUT_MS } from './fields.js';
import type { SidecarConfig } from './sidecar-config.js';

/** One line per upstream whose effective connectTimeout is at or above its non-zero timeout; `file` as the user named it. */
export function connectTimeoutWarnings(config: SidecarConfig, file: string): string[] {
  const warnings: string[] = [];
  for (const upstream of config.outbound?.upstreams ?? []) {
    // timeout 0: no bound on the answer, so the dial keeps its own and another endpoint gets its turn
    if (upstream.timeoutMs === 0) continue;
    const connectMs = upstream.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    if (connectMs < upstream.timeoutMs) continue;
    const connect = `connectTimeout ${formatDuration(connectMs)}${upstream.connectTimeoutMs === undefined ? ' (the default)' : ''}`;
    warnings.push(
      `${file}: outbound.upstreams.${upstream.name}: ${connect} is not below timeout ${formatDuration(upstream.timeoutMs)}: ` +
        'a dial to an endpoint that never finishes its handshake can take the whole timeout, and the request gets 504 while a healthy endpoint exists; ' +
        advice(upstream.timeoutMs),
    );
  }
  return warnings;
}

/** What to write: a fifth of the timeout, at most 1 s (Linkerd's dial bound); a timeout too short for any dial is raised instead. */
function advice(timeoutMs: number): string {
  const suggested = Math.min(1000, Math.floor(timeoutMs / 5));
  if (suggested < MIN_CONNECT_TIMEOUT_MS) return `raise timeout: no connectTimeout (${formatDuration(MIN_CONNECT_TIMEOUT_MS)} at least) fits well below it`;
  return `lower connectTimeout well below timeout (say ${formatDuration(suggested)})`;
}
