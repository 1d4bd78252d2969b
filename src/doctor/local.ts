// doctor's checks of this host: the inbound app (reachable, speaking the protocol inbound.app
// names: HTTP/1.1 for http://, HTTP/2 prior knowledge for h2c://), and a running sidecar's admin
// port (/ready, and the last TLS handshake failures it saw, from /debug/tls).

import { formatHostPort } from '../config/address.js';
import { clip } from '../clip.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { fail, ok, skip, warn, type CheckResult } from './result.js';
import { dialTcp, http2Ping, httpGet, networkProblem, speaksTls, httpProbeLimits, type HttpAnswer, type HttpProbeLimits } from './probe.js';

export async function checkApp(config: SidecarConfig, limits: HttpProbeLimits = httpProbeLimits()): Promise<CheckResult | undefined> {
  const app = config.inbound?.app;
  if (!app) return undefined;
  const url = `${app.protocol}://${formatHostPort(app)}`;
  const name = `app ${url}`;
  try {
    (await dialTcp(app.host, app.port)).destroy();
  } catch (err) {
    return fail(name, `not reachable: ${networkProblem(err, 'http')}`, `start the app on ${formatHostPort(app)}, or correct inbound.app`);
  }
  try {
    if (app.protocol === 'h2c') return ok(name, `reachable, speaks HTTP/2 (h2c), PING ${(await http2Ping(`http://${formatHostPort(app)}`)).toFixed(2)} ms`);
    // the head says the protocol; an app's body (a stream, a download) is none of doctor's business
    const answer = await httpGet(app.host, app.port, '/', { headOnly: true, limits });
    // a meshcar TLS port (a sidecar's inbound, the CA) answers plain HTTP with a 400 saying so
    // (plain-http-answer.ts): a 400 from a port that also takes TLS is no plain HTTP app
    if (answer.status === 400 && (await speaksTls(app.host, app.port))) return speaksTlsInstead(name, app, 'it answers plain HTTP only with 400, as a TLS port does');
    return ok(name, `reachable, speaks HTTP/${answer.version} (GET / → ${answer.status})`);
  } catch (err) {
    const wanted = app.protocol === 'h2c' ? 'HTTP/2 with prior knowledge (h2c)' : 'HTTP/1.1';
    const problem = networkProblem(err, 'http');
    // a silent server would say nothing more to other probes: one deadline is enough
    if ((err as { code?: unknown }).code === 'PROBE_TIMEOUT') return fail(name, `reachable, but it does not speak ${wanted}: ${problem}`, `it accepts connections but gives no whole answer: see whether the app is stuck, and that ${formatHostPort(app)} is its port`);
    const found = await otherProtocol(app.host, app.port, app.protocol, limits);
    if (found === 'tls') return speaksTlsInstead(name, app, problem);
    if (found) return fail(name, `reachable, but it does not speak ${wanted}, it speaks ${found}: ${problem}`, app.protocol === 'h2c' ? 'use http:// in inbound.app for an HTTP/1.1 app' : 'use h2c:// in inbound.app for an HTTP/2-only (e.g. gRPC) app');
    // neither protocol: switching inbound.app would not help, what listens there is the question
    return fail(name, `reachable, but it speaks neither HTTP/1.1 nor h2c nor TLS: ${problem}`, `check what listens on ${formatHostPort(app)} (ss -ltnp names it): inbound.app must name the app's plain HTTP port`);
  }
}

/** The app's port speaks TLS: the sidecar does that, the app must serve plain HTTP or h2c to it. */
function speaksTlsInstead(name: string, app: { host: string; port: number; protocol: 'http' | 'h2c' }, problem: string): CheckResult {
  const wanted = app.protocol === 'h2c' ? 'HTTP/2 with prior knowledge (h2c)' : 'HTTP/1.1';
  return fail(name, `reachable, but it speaks TLS, not ${wanted}: ${problem}`, `the sidecar does the TLS: have the app serve plain ${app.protocol === 'h2c' ? 'h2c' : 'HTTP'} on ${formatHostPort(app)} (loopback), or point inbound.app at a port that does`);
}

/**
 * What an app that failed its protocol speaks instead, so the fix is the right one: the other
 * of http/h2c (in words), 'tls' for an https server, undefined for none of them.
 */
async function otherProtocol(host: string, port: number, configured: 'http' | 'h2c', limits: HttpProbeLimits): Promise<string | undefined> {
  const other =
    configured === 'h2c'
      ? httpGet(host, port, '/', { headOnly: true, limits }).then((a) => `HTTP/${a.version} (GET / → ${a.status})`)
      : http2Ping(`http://${formatHostPort({ host, port })}`).then(() => 'HTTP/2 (h2c)');
  const [plain, tls] = await Promise.all([other.catch(() => undefined), speaksTls(host, port)]);
  return plain ?? (tls ? 'tls' : undefined);
}

interface TlsFailureEntry {
  readonly time?: string;
  readonly direction?: string;
  readonly peer?: string;
  readonly reason?: string;
  readonly message?: string;
}

/** What answered, in a few words on one line: `200 text/plain: ok`. */
function described(answer: HttpAnswer): string {
  const body = answer.body.trim().replace(/\s+/g, ' ');
  return `${answer.status}${answer.contentType ? ` ${answer.contentType.split(';')[0]}` : ''}: ${body.length > 60 ? `${body.slice(0, 60)}…` : body || '(empty body)'}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A meshcar /ready answers 200 {"status":"ready"}, 503 {"status":"starting"}, {"status":"expired"} or {"status":"draining"} (src/admin/server.ts); anything else is another program. */
function sidecarReadiness(answer: HttpAnswer): 'ready' | 'starting' | 'expired' | 'draining' | undefined {
  const status = (parseJson(answer.body) as { status?: unknown } | undefined)?.status;
  if (answer.status === 200 && status === 'ready') return 'ready';
  if (answer.status === 503 && status === 'starting') return 'starting';
  if (answer.status === 503 && status === 'expired') return 'expired';
  if (answer.status === 503 && status === 'draining') return 'draining';
  return undefined;
}

/** The failures of a /debug/tls answer, or why they cannot be read. */
function tlsFailures(answer: HttpAnswer): TlsFailureEntry[] | string {
  if (answer.status !== 200) return `/debug/tls answered ${described(answer)}`;
  const failures = (parseJson(answer.body) as { failures?: unknown } | undefined)?.failures;
  return Array.isArray(failures) ? (failures as TlsFailureEntry[]) : `/debug/tls answered ${described(answer)}, not {"failures": [...]}`;
}

/** What doctor reads of GET /identity. */
interface IdentityView {
  readonly spiffeId?: unknown;
  readonly status?: unknown;
  readonly renewalFailing?: { failures?: unknown; since?: unknown; lastError?: unknown } | null;
}

/** GET /identity's JSON, or undefined (no answer, not 200, not JSON). */
async function identityView(target: string, port: number, limits: HttpProbeLimits): Promise<IdentityView | undefined> {
  const answer = await httpGet(target, port, '/identity', { limits, hostHeader: ADMIN_HOST }).catch(() => undefined);
  if (answer?.status !== 200) return undefined;
  return parseJson(answer.body) as IdentityView | undefined;
}

/**
 * Why the running sidecar's renewals fail, from GET /identity's renewalFailing: '' when none fail
 * (or it cannot say). While it starts (`status: starting`) the same field holds its failed
 * requests for the first SVID.
 */
function renewalTrouble(view: IdentityView | undefined): string {
  const failing = view?.renewalFailing;
  if (!failing || typeof failing.lastError !== 'string' || typeof failing.failures !== 'number') return '';
  const what = view?.status === 'starting' ? `request${failing.failures === 1 ? '' : 's'} for its first SVID` : `renewal attempt${failing.failures === 1 ? '' : 's'}`;
  return `; ${failing.failures} ${what} failed since ${String(failing.since)}, the latest: ${failing.lastError}`;
}

/**
 * The Host doctor names on the admin port, whatever name admin.listen gives: the sidecar's
 * browser guard takes localhost always, and a name it is not told of (admin.hosts) got its
 * 403, which doctor read as another program holding the port.
 */
const ADMIN_HOST = 'localhost';

/** The admin check's results that found this config's sidecar running (ready or not): its listen ports are its own. */
const foundRunning = new WeakSet<CheckResult>();
function ranHere(result: CheckResult): CheckResult {
  foundRunning.add(result);
  return result;
}

/** Results that cannot tell this config's sidecar, hung, from another program. */
const mayBeRunning = new WeakSet<CheckResult>();
function mayBeHere(result: CheckResult): CheckResult {
  mayBeRunning.add(result);
  return result;
}

/** Whether the admin check found this config's sidecar running ('unknown': a hung one is one reading). */
export function sidecarFoundRunning(result: CheckResult): boolean | 'unknown' {
  return foundRunning.has(result) || (mayBeRunning.has(result) ? 'unknown' : false);
}

export async function checkAdmin(config: SidecarConfig, now = Date.now(), limits: HttpProbeLimits = httpProbeLimits()): Promise<CheckResult> {
  const { host, port } = config.admin.listen;
  const address = formatHostPort(config.admin.listen);
  const name = `admin ${address}`;
  if (port === 0) return skip(name, 'admin.listen has port 0: a running sidecar cannot be found by its config');
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  let ready;
  try {
    ready = await httpGet(target, port, '/ready', { limits, hostHeader: ADMIN_HOST });
  } catch (err) {
    const problem = networkProblem(err, 'http');
    if (/ECONNREFUSED/.test(problem)) return skip(name, 'no sidecar is running with this config (nothing listening on admin.listen)');
    // something accepted the connection but gave no answer a meshcar admin port gives: name it
    // as a foreign program, as a foreign 200 is below (a hung sidecar is the other reading)
    const result = fail(name, `something other than a ready meshcar sidecar answers there: GET /ready: ${problem}`, `another process holds admin.listen (ss -ltnp names it): stop it or choose another port; if it is this sidecar, it is stuck: its log says why`);
    // no answer in time may be this sidecar, hung; an answer that is no HTTP is another program
    return (err as { code?: unknown }).code === 'PROBE_TIMEOUT' ? mayBeHere(result) : result;
  }
  const readiness = sidecarReadiness(ready);
  // a foreign server's 200 is not a ready sidecar, and this sidecar could not bind its admin port
  if (!readiness) return fail(name, `something other than a meshcar sidecar answers there: GET /ready → ${described(ready)}, expected 200 {"status":"ready"} or 503 {"status":"starting" | "expired" | "draining"}`, 'another process holds admin.listen (ss -ltnp names it): stop it or choose another port');
  const failures = await httpGet(target, port, '/debug/tls', { limits, hostHeader: ADMIN_HOST }).then(tlsFailures, (err: unknown) => `/debug/tls: ${networkProblem(err, 'http')}`);
  const recent = typeof failures === 'string' ? [] : failures.filter((f) => now - Date.parse(f?.time ?? '') < 10 * 60_000);
  const tlsNote = typeof failures === 'string' ? '' : recent.length === 0 ? '; no TLS handshake failures in the last 10 min' : `; ${recent.length} TLS handshake failure${recent.length === 1 ? '' : 's'} in the last 10 min, latest: ${recent[0]?.direction} ${recent[0]?.peer}: ${recent[0]?.message}`;
  const view = await identityView(target, port, limits);
  // another service's sidecar on this port (its admin.listen the same): ready, but not this
  // config's, which cannot start while the port is held; it was a ✓ "the running sidecar is ready"
  if (typeof view?.spiffeId === 'string' && view.spiffeId !== config.spiffeId) {
    // or this very sidecar, started before service or trustDomain changed in the file (a
    // reload refuses those): the answer cannot tell the two apart, so the fix names both
    return fail(name, `another sidecar answers there: it is ${clip(JSON.stringify(view.spiffeId), 200)}, not this config's ${config.spiffeId}`, `if it is this config's sidecar, started before service or trustDomain changed in the file, restart it (a reload does not change them); otherwise each sidecar needs an admin.listen of its own: this one cannot start while another holds the port (ss -ltnp names it)`);
  }
  // the reason, as the sidecar saw it (its log says so too)
  const trouble = readiness === 'draining' ? '' : renewalTrouble(view);
  if (readiness === 'expired') return ranHere(fail(name, `the running sidecar's SVID has expired and its renewal keeps failing; peers refuse it (/ready ${described(ready)})${trouble}${tlsNote}`, 'its log says why the renewal fails (CA unreachable, a refusal); bring the CA back, or restart it with a fresh join token'));
  if (readiness === 'draining') return ranHere(warn(name, `the running sidecar is draining: it was told to stop (SIGTERM) and finishes what is in flight (/ready ${described(ready)})${tlsNote}`, 'nothing, if a stop was meant; otherwise see its log for who sent the signal'));
  if (readiness === 'starting') return ranHere(fail(name, `the running sidecar is not ready (/ready ${described(ready)})${trouble}${tlsNote}`, trouble === '' ? 'its log says what it waits for (identity from the CA, a listener)' : `mend what the latest failure names (curl http://${address}/identity shows it); it keeps asking, at most a second apart, for 30 s from its start`));
  if (trouble !== '') return ranHere(warn(name, `the running sidecar is ready, but its certificate is not being renewed${trouble}${tlsNote}`, `mend what the latest failure names (curl http://${address}/identity shows it); the current SVID serves until it expires`));
  if (typeof failures === 'string') return ranHere(warn(name, `the running sidecar is ready, but its TLS handshake failures cannot be read: ${failures}`, `curl http://${address}/debug/tls`));
  if (recent.length > 0) return ranHere(warn(name, `the running sidecar is ready${tlsNote}`, `see curl http://${address}/debug/tls and "TLS handshake failures" in docs/troubleshooting.md`));
  return ranHere(ok(name, `the running sidecar is ready${tlsNote}`));
}
