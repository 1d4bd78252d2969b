// What the admin server (src/admin/server.ts) reads of a running sidecar: readiness, the
// identity, the effective config (redacted), reloads, metrics and the views (/endpoints,
// /debug/tls, /upstreams, /workers), each read when asked. The composition root (sidecar.ts)
// hands its parts in as getters, so the views always see the config and parts in force.

import type { AdminState } from './admin/server.js';
import type { SidecarConfig } from './config/sidecar-config.js';
import { redactConfig } from './config/freeze.js';
import { effectiveYamlView } from './config/effective-yaml.js';
import { MeshcarError } from './errors.js';
import type { RunningIdentity } from './identity/bootstrap.js';
import { identityView, type IdentityStart } from './identity/sidecar-identity.js';
import type { Metrics } from './metrics/registry.js';
import type { TrafficMetrics } from './metrics/traffic-metrics.js';
import { endpointsView } from './metrics/endpoints-view.js';
import type { TlsFailureLog } from './tls-failures/failure-log.js';
import type { UpstreamView } from './outbound/index.js';
import type { Guards } from './schema/guards.js';
import type { ReloadResult } from './reload-outcome.js';
import type { WorkerCluster } from './workers/contract.js';

export interface SidecarParts {
  /** Started (this process's side; with workers, cluster.listening() must agree too). */
  readonly ready: () => boolean;
  readonly draining: () => boolean;
  readonly identity: () => RunningIdentity | undefined;
  /** The config in force (the file as loaded, with every applied reload). */
  readonly config: () => SidecarConfig;
  readonly identityStart: IdentityStart;
  readonly reload: () => Promise<ReloadResult>;
  readonly metrics: Metrics;
  readonly traffic: TrafficMetrics;
  readonly guards: () => Guards;
  readonly tlsFailures: TlsFailureLog;
  readonly upstreams: () => UpstreamView[];
  /** workers > 1: the primary's view of its workers. */
  readonly cluster?: WorkerCluster;
}

export function sidecarAdminState(parts: SidecarParts): AdminState {
  const { cluster } = parts;
  return {
    // workers > 1: every worker listens (a restarted one is waited for)
    ready: () => parts.ready() && (cluster?.listening() ?? true),
    draining: parts.draining,
    // the primary's (or the one process's) SVID: workers serve what it hands them
    expiredAt: () => {
      const svid = parts.identity()?.identity.current();
      return svid && svid.notAfter.getTime() <= Date.now() ? svid.notAfter : undefined;
    },
    identity: () => identityView(parts.identity(), parts.config().spiffeId, parts.config().identity.source, parts.identityStart),
    config: () => redactConfig(effectiveYamlView(parts.config())),
    reload: async () => {
      const result = await parts.reload();
      if (!result.ok) throw new MeshcarError(result.code ?? 'config_invalid', result.messages.join('\n'));
      return { applied: result.applied, restartRequired: result.restartRequired, ...(result.warnings ? { warnings: result.warnings } : {}) };
    },
    metrics: (accept: string | undefined) => cluster?.metrics(accept) ?? parts.metrics.renderFor(accept),
    views: {
      '/endpoints': (query: URLSearchParams) => endpointsView(query.get('format'), { service: parts.config().service, traffic: parts.traffic, guards: parts.guards(), cluster }),
      // workers > 1: the handshakes happen in the workers, not here
      '/debug/tls': async () => ({ failures: cluster ? await cluster.tlsFailures() : parts.tlsFailures.recent() }),
      // workers > 1: each worker's own pools, side by side (src/workers/cluster-views.ts)
      '/upstreams': () => cluster?.upstreams() ?? { upstreams: parts.upstreams() },
      ...(cluster ? { '/workers': () => cluster.status() } : {}),
    },
    ...(cluster ? {} : { absentViews: { '/workers': 'this sidecar runs as one process; the view exists with workers: 2 or more (or auto on a machine with more than one core)' } }),
  };
}
