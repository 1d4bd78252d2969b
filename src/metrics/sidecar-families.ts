// The metric families a sidecar's registry holds from its start (sidecar.ts): the config
// reload counts at 0 for both outcomes, and none of the CA server's.

import type { Metrics } from './registry.js';

export function sidecarFamilies(metrics: Metrics): void {
  for (const result of ['success', 'failure']) metrics.configReloads.labels(result).inc(0);
  // the CA's families (meshcar_ca_*) belong to the CA server; a sidecar exporting
  // meshcar_ca_certificates_issued_total 0 would only mislead dashboards and alerts
  for (const metric of metrics.registry.getMetricsAsArray()) {
    if (metric.name.startsWith('meshcar_ca_')) metrics.registry.removeSingleMetric(metric.name);
  }
}
