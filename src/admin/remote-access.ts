// Which admin endpoints answer a peer on another host. The admin port often listens on every
// address (Kubernetes probes and Prometheus come from outside the pod), and then every pod in
// the cluster can reach it too: those get the liveness, readiness and metrics endpoints only.
// The config, the identity, the views (workers, endpoints, upstreams, TLS failures) and POST /reload answer loopback
// peers alone (the same process namespace: `kubectl exec`, a reloader next to the sidecar),
// as Linkerd keeps its proxy's shutdown and log-level endpoints to localhost: the config shows
// the policy and the upstreams, and a reload is a CPU cost any pod could run in a loop.

import { isLoopbackAddress } from '../config/address.js';
import { clip } from '../clip.js';

export { isLoopbackAddress };

/** What a peer on another host may ask for. */
const REMOTE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/ready', '/metrics']);

/** Why the request is refused, or undefined when the peer may have it. */
export function remoteRefusal(path: string, remoteAddress: string | undefined): string | undefined {
  if (REMOTE_PATHS.has(path) || isLoopbackAddress(remoteAddress)) return undefined;
  return `${clip(path, 256)} answers only on this host (from a loopback address); from elsewhere the admin port serves ${[...REMOTE_PATHS].join(', ')}`;
}
