// `meshcar doctor --config FILE`: every check a sidecar's health depends on, in the order a
// person would look: the config, the identity and join token, the CA, each upstream endpoint,
// the OpenAPI specs, the inbound app, and a running sidecar's admin port. Checks that need
// something an earlier one found broken (an SVID to handshake with) are skipped, so one broken
// thing is one ✗; with no SVID yet (a first start) the upstreams are dialled with the bundle alone.

import { checkConfigFile } from '../config/load-any.js';
import { formatIssue } from '../config/issues.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { folderHolding } from '../config/config-folder.js';
import { referencedPaths } from '../config/referenced-files.js';
import { dirname, relative, resolve } from 'node:path';
import { checkCa } from './ca.js';
import { checkIdentity, checkToken } from './identity.js';
import { checkAdmin, checkApp, sidecarFoundRunning } from './local.js';
import { checkListeners } from './listen.js';
import { checkSpecs } from './openapi.js';
import { fail, ok, type CheckResult } from './result.js';
import { checkUpstreams } from './upstreams.js';
import { setProbeTimeout } from './probe.js';
import { shellWord } from '../shell-word.js';
import { toldIssues } from '../reload-outcome.js';

export { formatReport, type CheckResult } from './result.js';

/** `timeoutMs`: each probe's bound (`--timeout`), 3 s when not given. */
export async function runDoctor(file: string, options: { timeoutMs?: number } = {}): Promise<CheckResult[]> {
  if (options.timeoutMs !== undefined) setProbeTimeout(options.timeoutMs);
  // the files it names are checked below, each by the check it belongs to (identity, token, CA)
  const { kind, issues, config: loaded } = await checkConfigFile(file, { referencedFiles: false });
  // the first issues and a count of the rest, as run prints them: 60,000 of them were 14 MB
  if (issues.length > 0) {
    const told = toldIssues(issues.map(formatIssue), file);
    const results = told.map((line) => fail('config', line, `meshcar check --config ${shellWord(file)} lists every issue`));
    // the summary counts every issue, not the line that counts the rest as one
    if (told.length < issues.length) results[told.length - 1] = { ...results[told.length - 1]!, count: issues.length - (told.length - 1) };
    return results;
  }
  if (kind !== 'sidecar' || loaded?.kind !== 'sidecar') return [fail('config', `${file} is a CA config; doctor checks a sidecar's config`, `run doctor on the sidecar's config; meshcar check --config ${shellWord(file)} checks this one`)];
  // the config as the check read it: read again, a piped one (/dev/stdin) was found drained
  const config = loaded.config;
  const results: CheckResult[] = [ok('config', `${file}: valid sidecar configuration for ${config.spiffeId}`)];
  const away = awayFromConfigFolder(config);
  if (away) results.push(away);
  // the checks that need no SVID start now, beside the identity check: a CA that accepts and
  // never answers would otherwise cost its probe timeout (3 s) twice (the identity's bundle fetch, then this)
  const independent = Promise.all([checkCa(config), checkApp(config), checkAdmin(config), checkSpecs(config)]);
  independent.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
  const identity = await checkIdentity(config);
  results.push(identity.result);
  const token = await checkToken(config, identity.needsToken);
  if (token) results.push(token);
  const [[ca, app, admin, specs], upstreams] = await Promise.all([independent, checkUpstreams(config, identity.svid, identity.result.status !== 'fail')]);
  if (ca) results.push(ca);
  results.push(...specs);
  results.push(...upstreams);
  if (app) results.push(app);
  results.push(admin);
  // its own ports, once the admin check says whether a sidecar with this config runs
  const found = sidecarFoundRunning(admin);
  const runs = found === false && config.admin.listen.port === 0 ? 'unknown' : found;
  results.push(...(await checkListeners(config, runs)));
  return results;
}

export function doctorFailed(results: readonly CheckResult[]): boolean {
  return results.some((r) => r.status === 'fail');
}

/**
 * Run from another folder than the config's, its relative paths miss what the config's folder
 * holds: one line saying so, where the checks below each say only that a file is missing.
 */
function awayFromConfigFolder(config: SidecarConfig): CheckResult | undefined {
  const missing = referencedPaths(config).filter((path) => folderHolding(config.file, path) !== undefined);
  if (missing.length === 0) return undefined;
  // (the nearest folder that holds the first of them: one meshcar folder holds them all)
  const folder = folderHolding(config.file, missing[0] as string) as string;
  const holder = folder === dirname(resolve(config.file)) ? `the config's folder (${folder})` : `${folder}, above the config's folder,`;
  const named = missing.map((path) => relative(process.cwd(), path));
  return fail(
    'paths',
    `${named.join(', ')}: missing from the working directory (${process.cwd()}), which relative paths are read from; ${holder} holds ${missing.length === 1 ? 'it' : 'them'}`,
    `run meshcar from ${shellWord(folder)}, as the sidecar must run, or write the paths absolute`,
  );
}
