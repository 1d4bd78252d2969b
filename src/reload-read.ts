// The first step of a reload in the process that reads the config file (sidecar.ts): the file
// read again and validated (an invalid one's issues one per message, as `meshcar check` prints
// them), planned against the running config (config/reload-plan.ts), refused whole when it is
// for another identity, and its OpenAPI specs read again (a spec file may change while the
// config does not). Nothing is applied here; any refusal keeps the whole running config. Once
// applied, what the file holds that the next start would fail on is found here too.
// A file written to moments ago (the config, then the specs it names, then the files their
// $refs name) is waited for until it has stood still for RELOAD_SETTLE_MS: a
// writer that writes it in place (an editor's save, a script's `>`) may have stopped part way,
// and a config cut short is often still a valid one (one that ends before `inbound.authorize`
// lets every caller of the trust domain in: a review applied such a file with a SIGHUP sent on
// inotify's modify event). As a narrowing trust bundle waits for its bytes to stand (README).

import { loadSidecarConfig, type SidecarConfig } from './config/sidecar-config.js';
import { planReload, type IdentityKey, type ReloadPlan } from './config/reload-plan.js';
import { ConfigError, formatIssue } from './config/issues.js';
import { describeError } from './errors.js';
import { loadGuards, type Guards } from './schema/guards.js';
import { identityFileProblems } from './config/referenced-files.js';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long the config file must have stood unchanged before a reload reads it. */
export const RELOAD_SETTLE_MS = 2_000;
/** The most a reload waits for that (a file whose date is in the future is read after it). */
const MAX_SETTLE_WAIT_MS = 6_000;

/** A date further ahead than this is a clock's doing, not a write under way: read at once (it would cost every reload the whole wait). */
const FUTURE_SLACK_MS = 1_000;

/**
 * Waits until each of `files` was last changed RELOAD_SETTLE_MS ago (or `deadline` has passed);
 * returns how long it waited. The timer does not hold the process: a drain that ends
 * meanwhile lets it exit (the reload is then refused as the stop overtook it).
 */
async function settled(files: readonly string[], deadline: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const now = Date.now();
    // a file that cannot be stat'ed is the load's to report
    const changed = await Promise.all(files.map((file) => stat(file).then((info) => info.mtimeMs, () => 0)));
    const latest = Math.max(0, ...changed.filter((ms) => ms <= now + FUTURE_SLACK_MS));
    const left = Math.min(latest + RELOAD_SETTLE_MS - now, deadline - now);
    if (left <= 0) return Date.now() - started;
    await sleep(left, undefined, { ref: false });
  }
}

/** The spec files a config names (a spec may be written in place as the config is). */
function specFiles(config: SidecarConfig): string[] {
  const specs = [config.inbound?.openapi?.spec, ...(config.outbound?.upstreams ?? []).map((u) => u.openapi?.spec)];
  return [...new Set(specs.filter((spec): spec is string => spec !== undefined))];
}

/** A file read for a reload: refused (its messages), or its plan, the config as read and its specs' guards. */
export type ReloadRead = { readonly refused: readonly string[]; readonly aborted?: true } | { readonly plan: ReloadPlan; readonly next: SidecarConfig; readonly guards: Guards; /** Waited for the files to stand (settled). */ readonly waitedMs: number };

/** The live keys of `next` that name SPIFFE IDs, which must be in its trust domain: those the file has. */
function keysNamingIds(next: SidecarConfig): string[] {
  return [next.inbound?.authorize ? 'inbound.authorize' : '', next.outbound ? 'outbound.upstreams' : ''].filter(Boolean);
}

/** Why a change of `key` needs a restart: what it is to the running sidecar. */
function whyRestart(key: IdentityKey, next: SidecarConfig): string {
  if (key === 'service') return `it makes the sidecar's own SPIFFE ID ${next.spiffeId}, which its certificate carries`;
  const named = keysNamingIds(next);
  const checked = named.length > 0 ? `, and the SPIFFE IDs this file's ${named.join(' and ')} name${named.length === 1 ? 's' : ''} are checked against it` : '';
  return `the sidecar's own SPIFFE ID and the trust it accepts are in it${checked}`;
}

/** Why a reload that changes `trustDomain` or `service` is refused, and what to do instead. */
function identityChangeMessage(file: string, key: IdentityKey, running: string, next: SidecarConfig): string {
  return `${file}: ${key}: changed from ${running} to ${next[key]}, which needs a restart (${whyRestart(key, next)}); nothing was applied. Restart the sidecar to run this file, or put ${key} back to ${running} to reload the rest`;
}

/** Reads `file` (as the user named it) for a reload; `running` gives the config in force once it has been read. */
export async function readReload(file: string, running: () => SidecarConfig): Promise<ReloadRead> {
  let next: SidecarConfig;
  // one bound for the config and its specs together
  const deadline = Date.now() + MAX_SETTLE_WAIT_MS;
  let waitedMs = await settled([file], deadline);
  try {
    next = await loadSidecarConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError) || err.issues.length === 0) return { refused: [`${file}: ${describeError(err)}`] };
    // a file this host could not read for want of descriptors is no invalid one: aborted, reload again
    if (err.issues.some((issue) => issue.hostShortage)) return { refused: [...err.issues.map(formatIssue), 'nothing was applied; reload again once the sidecar has descriptors free'], aborted: true };
    return { refused: err.issues.map(formatIssue) };
  }
  const current = running();
  const plan = planReload(current, next);
  // a file for another identity is refused whole (see IDENTITY_KEYS): nothing of it applies
  if (plan.identityChanged.length > 0) return { refused: plan.identityChanged.map((key) => identityChangeMessage(file, key, current[key], next)) };
  // the specs are read again on every reload; one that fails keeps the whole running config, specs included
  waitedMs += await settled(specFiles(plan.effective), deadline);
  try {
    let guards = await loadGuards(plan.effective);
    // the files the specs' $refs named are known once read: one written moments ago is waited
    // for and the specs read again (within the same bound)
    const refWait = await settled(refsRead(guards), deadline);
    if (refWait > 0) guards = await loadGuards(plan.effective);
    return { plan, next, guards, waitedMs: waitedMs + refWait };
  } catch (err) {
    return { refused: [`${file}: ${describeError(err)}`] };
  }
}

/** The files the guards' specs' $refs named, once each. */
function refsRead(guards: Guards): string[] {
  const specs = [guards.inbound, ...guards.upstreams.values()].map((guard) => guard?.spec);
  return [...new Set(specs.flatMap((spec) => spec?.refsRead ?? []))];
}

/**
 * A restart-only identity key naming a file that is not there or unusable, or identity.files
 * that do not work together as a set: applied (the running identity
 * stays), but the next start would fail on it, so the answer says so now.
 */
export async function nextStartProblems(file: string, plan: ReloadPlan, next: SidecarConfig): Promise<string[]> {
  if (!plan.restartRequired.some((path) => path.startsWith('identity'))) return [];
  return (await identityFileProblems(next)).map(({ key, problem }) => `${file}: ${key}: ${problem}`);
}
