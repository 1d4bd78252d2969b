// The outcome of a config reload (SIGHUP, POST /reload, or a worker told to reload): the answer
// its caller gets, and how it is reported: the log lines (one per issue or per key waiting for a
// restart, then a summary) and meshcar_config_reloads_total.

import type { Logger } from 'pino';
import type { Metrics } from './metrics/registry.js';

/** The answer to a reload: what changed live and what waits for a restart, or why nothing changed. */
export type ReloadResult =
  | { readonly ok: true; readonly applied: readonly string[]; readonly restartRequired: readonly string[] }
  | { readonly ok: false; readonly messages: readonly string[] };

/** Where an outcome is reported: the reload's logger, the config file as the user named it, the counters. */
export interface ReloadReport {
  readonly log: Logger;
  readonly file: string;
  readonly metrics: Metrics;
}

/** A reload refused as a whole: each message on its line, as `meshcar check` prints them, then the summary. */
export function reportRefused(report: ReloadReport, messages: readonly string[]): ReloadResult {
  const { log, file, metrics } = report;
  for (const message of messages) log.error(message);
  log.error({ file, issues: messages.length }, 'config reload failed; the running config is kept');
  metrics.configReloads.labels('failure').inc();
  return { ok: false, messages };
}

/** A reload applied: each changed key that keeps its running value until a restart, then the summary. */
export function reportApplied(report: ReloadReport, applied: readonly string[], restartRequired: readonly string[]): ReloadResult {
  const { log, file, metrics } = report;
  for (const path of restartRequired) log.warn({ keyPath: path }, `${path} changed: needs a restart to take effect; the running value is kept`);
  log.info({ file, applied, restartRequired }, 'config reloaded');
  metrics.configReloads.labels('success').inc();
  return { ok: true, applied, restartRequired };
}
