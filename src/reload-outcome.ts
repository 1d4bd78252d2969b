// The outcome of a config reload (SIGHUP, POST /reload, or a worker told to commit one): the
// answer its caller gets, and how it is reported: the log lines (one per issue or per key waiting
// for a restart, then a summary) and meshcar_config_reloads_total. With workers > 1 there are two
// more outcomes, each told as it is: aborted (no process applied it) and partial (applied, but a
// worker did not confirm and is restarted on it): never "the running config is kept" unless so.
// A reload asked for when it cannot run (no start, a stop, a drain) is told here too.

import type { Logger } from 'pino';
import type { Metrics } from './metrics/registry.js';
import { shellWord } from './shell-word.js';

/** The answer to a reload: what changed live and what waits for a restart, or why nothing changed. */
export type ReloadResult =
  | { readonly ok: true; readonly applied: readonly string[]; readonly restartRequired: readonly string[]; readonly warnings?: readonly string[] }
  | { readonly ok: false; readonly messages: readonly string[]; readonly code?: 'reload_aborted' | 'reload_partial' };

/** Where an outcome is reported: the reload's logger, the config file as the user named it, the counters. */
export interface ReloadReport {
  readonly log: Logger;
  readonly file: string;
  readonly metrics: Metrics;
}

/** A reload asked for when there is nothing to apply it to: a failed start or a stop left nothing (`why`). */
export function reportNotRun(logger: Logger, why: string): ReloadResult {
  logger.warn({ component: 'reload' }, `config reload asked for, not run: ${why}`);
  return { ok: false, code: 'reload_aborted', messages: [`${why}: the reload is not run`] };
}

/**
 * A reload asked for while the sidecar drains (shuts down): `messages` say why, as the caller
 * tells it, and the log line says the same (a drain that began while the file was read, each
 * worker that could not prepare a round the stop overtook), not one fixed text for every case.
 */
export function reportNotRunWhileDraining(logger: Logger, messages: readonly string[]): ReloadResult {
  logger.warn({ component: 'reload' }, `config reload asked for while draining: ${messages.join('; ')}`);
  return { ok: false, code: 'reload_aborted', messages };
}

/** A reload refused as a whole: each message on its line, as `meshcar check` prints them, then the summary. */
export function reportRefused(report: ReloadReport, messages: readonly string[], aborted?: true): ReloadResult {
  const { log, file, metrics } = report;
  const told = toldIssues(messages, file);
  for (const message of told) log.error(message);
  // (an aborted reload's last message is the advice to reload again, no issue)
  log.error({ file, issues: aborted ? messages.length - 1 : messages.length }, 'config reload failed; the running config is kept');
  metrics.configReloads.labels('failure').inc();
  // aborted: the file could not be read (no descriptor left), which says nothing of it
  return aborted ? { ok: false, code: 'reload_aborted', messages: told } : { ok: false, messages: told };
}

/**
 * Mistakes told one by one, in the log and in the answer; a file with more gets the first ones
 * and a count of the rest (20,000 of them answered 4.6 MB of JSON, each one a log line too).
 */
export const TOLD_ISSUES = 100;

export function toldIssues(messages: readonly string[], file: string): readonly string[] {
  if (messages.length <= TOLD_ISSUES) return messages;
  const rest = (messages.length - TOLD_ISSUES).toLocaleString('en-US');
  return [...messages.slice(0, TOLD_ISSUES), `… and ${rest} more issues (meshcar check --config ${shellWord(file)} lists them all)`];
}

/** workers > 1: a checked config that some worker refused or did not prepare in time; every worker dropped it. */
export function reportAborted(report: ReloadReport, messages: readonly string[], generation: number): ReloadResult {
  const { log, file, metrics } = report;
  for (const message of messages) log.error(message);
  log.error({ file, generation }, `config reload aborted: no worker applied it; the running config (generation ${generation}) is kept`);
  metrics.configReloads.labels('failure').inc();
  return { ok: false, code: 'reload_aborted', messages: [...messages, `no worker applied it; the running config (generation ${generation}) is kept`] };
}

/**
 * workers > 1: the new config is in force (the primary's own view included) but some worker
 * did not confirm it; that worker is restarted and comes back on it. Counted as a success:
 * the config that runs is the new one, as /config shows.
 */
export function reportPartial(report: ReloadReport, messages: readonly string[], generation: number, stopping = false): ReloadResult {
  const { log, file, metrics } = report;
  for (const message of messages) log.error(message);
  // a stop (SIGTERM) that came while the workers committed: nothing is restarted any more
  const rest = stopping ? 'the sidecar is shutting down: they are not restarted' : 'the workers that did not confirm it are restarted on it';
  log.error({ file, generation }, `config reload partly confirmed: generation ${generation} is in force; ${rest}`);
  metrics.configReloads.labels('success').inc();
  return { ok: false, code: 'reload_partial', messages: [...messages, `generation ${generation} is in force; ${rest}`] };
}

/**
 * A reload applied: each changed key that keeps its running value until a restart, each
 * problem the next start will meet (`warnings`: a file a restart-only key names), then the summary.
 */
export function reportApplied(report: ReloadReport, applied: readonly string[], restartRequired: readonly string[], warnings: readonly string[] = []): ReloadResult {
  const { log, file, metrics } = report;
  for (const path of restartRequired) log.warn({ keyPath: path }, `${path} changed: needs a restart to take effect; the running value is kept`);
  for (const warning of warnings) log.warn(`${warning}: the next start will fail on it`);
  log.info({ file, applied, restartRequired }, 'config reloaded');
  metrics.configReloads.labels('success').inc();
  return warnings.length > 0 ? { ok: true, applied, restartRequired, warnings } : { ok: true, applied, restartRequired };
}
