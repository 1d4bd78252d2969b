// doctor's checks of this host: the inbound app (reachable, speaking the protocol inbound.app
// names: HTTP/1.1 for http://, HTTP/2 prior knowledge for h2c://), and a running sidecar's admin
// port (/ready, and the last TLS handshake failures it saw, from /debug/tls).

import http from 'node:http';
import { formatHostPort } from '../config/address.js';
import type { SidecarConfig } from '../config/sidecar-config.js';
import { fail, ok, skip, warn, type CheckResult } from './result.js';
import { dialTcp, http2Ping, networkProblem, PROBE_TIMEOUT_MS } from './probe.js';

function httpGet(host: string, port: number, path: string): Promise<{ status: number; body: string; version: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, headers: { 'user-agent': 'meshcar-doctor' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), version: res.httpVersion }));
      res.on('error', reject);
    });
    req.setTimeout(PROBE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('timeout'), { code: 'PROBE_TIMEOUT' })));
    req.on('error', reject);
  });
}

export async function checkApp(config: SidecarConfig): Promise<CheckResult | undefined> {
  const app = config.inbound?.app;
  if (!app) return undefined;
  const url = `${app.protocol}://${formatHostPort(app)}`;
  const name = `app ${url}`;
  try {
    (await dialTcp(app.host, app.port)).destroy();
  } catch (err) {
    return fail(name, `not reachable: ${networkProblem(err)}`, `start the app on ${formatHostPort(app)}, or correct inbound.app`);
  }
  try {
    if (app.protocol === 'h2c') return ok(name, `reachable, speaks HTTP/2 (h2c), PING ${(await http2Ping(`http://${formatHostPort(app)}`)).toFixed(2)} ms`);
    const answer = await httpGet(app.host, app.port, '/');
    return ok(name, `reachable, speaks HTTP/${answer.version} (GET / → ${answer.status})`);
  } catch (err) {
    return fail(name, `reachable, but it does not speak ${app.protocol === 'h2c' ? 'HTTP/2 with prior knowledge (h2c)' : 'HTTP/1.1'}: ${networkProblem(err)}`, app.protocol === 'h2c' ? 'use http:// in inbound.app for an HTTP/1.1 app' : 'use h2c:// in inbound.app for an HTTP/2-only (e.g. gRPC) app');
  }
}

interface TlsFailureEntry {
  readonly time?: string;
  readonly direction?: string;
  readonly peer?: string;
  readonly reason?: string;
  readonly message?: string;
}

export async function checkAdmin(config: SidecarConfig, now = Date.now()): Promise<CheckResult> {
  const { host, port } = config.admin.listen;
  const address = formatHostPort(config.admin.listen);
  const name = `admin ${address}`;
  if (port === 0) return skip(name, 'admin.listen has port 0: a running sidecar cannot be found by its config');
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  let ready;
  try {
    ready = await httpGet(target, port, '/ready');
  } catch (err) {
    const problem = networkProblem(err);
    return /ECONNREFUSED/.test(problem) ? skip(name, 'no sidecar is running with this config (nothing listening on admin.listen)') : fail(name, problem);
  }
  const failures = await httpGet(target, port, '/debug/tls').then(
    (r) => (r.status === 200 ? ((JSON.parse(r.body) as { failures?: TlsFailureEntry[] }).failures ?? []) : undefined),
    () => undefined,
  );
  const recent = (failures ?? []).filter((f) => now - Date.parse(f.time ?? '') < 10 * 60_000);
  const tlsNote = failures === undefined ? '' : recent.length === 0 ? '; no TLS handshake failures in the last 10 min' : `; ${recent.length} TLS handshake failure${recent.length === 1 ? '' : 's'} in the last 10 min, latest: ${recent[0]?.direction} ${recent[0]?.peer}: ${recent[0]?.message}`;
  if (ready.status !== 200) return fail(name, `the running sidecar is not ready (/ready ${ready.status} ${ready.body.trim()})${tlsNote}`, 'its log says what it waits for (identity from the CA, a listener)');
  if (recent.length > 0) return warn(name, `the running sidecar is ready${tlsNote}`, `see curl http://${address}/debug/tls and the troubleshooting section of the README`);
  return ok(name, `the running sidecar is ready${tlsNote}`);
}
