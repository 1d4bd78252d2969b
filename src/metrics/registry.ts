// Every metric family meshcar exports, declared once with its labels. Components receive the
// Metrics object they need (never a global registry), so tests and several sidecars in one
// process stay independent.

import client from 'prom-client';
import { VERSION } from '../version.js';

export class Metrics {
  readonly registry = new client.Registry();

  readonly caCertificatesIssued = new client.Counter({
    name: 'meshcar_ca_certificates_issued_total',
    help: 'Certificates issued by the CA.',
    registers: [this.registry],
  });

  readonly caRequestsDenied = new client.Counter({
    name: 'meshcar_ca_requests_denied_total',
    help: 'CA requests refused, by error code.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly identityCertExpiry = new client.Gauge({
    name: 'meshcar_identity_cert_expiry_timestamp_seconds',
    help: 'When the current workload certificate expires (Unix time).',
    labelNames: ['spiffe_id'] as const,
    registers: [this.registry],
  });

  readonly identityRenewals = new client.Counter({
    name: 'meshcar_identity_renewals_total',
    help: 'Certificate renewal attempts by result.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly buildInfo = new client.Gauge({
    name: 'meshcar_build_info',
    help: 'meshcar build information; always 1.',
    labelNames: ['version'] as const,
    registers: [this.registry],
  });

  constructor() {
    this.buildInfo.labels(VERSION).set(1);
  }

  contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
