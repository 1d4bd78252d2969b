// Test helper for whole-mesh runs: sidecar processes started from YAML written to a temp folder,
// exactly as an operator runs them (`meshcar run`), and a CA they reach over a real loopback
// port and TLS. The CA serves from this process, and its folder, join tokens and offline SVIDs
// are made here, by the functions `meshcar ca serve`, `ca init`, `ca token` and `ca issue` call
// (test/cli*, test/ca and test/e2e/ca-serve run the commands): a process for each cost 0.2-0.4 s
// of CPU, ~110 s of a two-core suite run's ~900 s.
// Listeners are configured on port 0 and their ports read back from the processes' own log
// lines ('CA server listening', 'admin listening', 'sidecar ready'): no port is picked free,
// released, and hoped to be still free when the process binds it (tap runs files in parallel).

import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { caInit, caIssue, caServe, caToken, writeTokenFile } from '../../src/ca/commands.js';
import { loadCaConfig } from '../../src/config/ca-config.js';
import { pino } from 'pino';
import { freePort, startMeshcar, type MeshcarProcess } from './process.js';
import { defaultTestAppClient } from './app-client-switch.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface MeshCa {
  readonly dir: string;
  readonly caDir: string;
  readonly url: string;
  readonly bundlePath: string;
  /** The `meshcar ca serve` process, when it runs as one (startMeshCa's nodeArgs or env). */
  readonly process?: MeshcarProcess;
  tokenFile(service: string): Promise<string>;
  /** An SVID issued offline for a service (svid.crt, svid.key, bundle.pem in the folder returned). */
  issue(service: string): Promise<{ cert: string; key: string; bundle: string; dir: string }>;
  stop(): Promise<void>;
}

/**
 * The CA serves from this test process (caServe, what `meshcar ca serve` runs, on a real
 * loopback port with real TLS): a CA process cost ~0.4 s of CPU to start and stop, ~50 s of a
 * suite run. `nodeArgs` and `env` run it as a process instead (`meshcar ca serve`), e.g. with
 * a preload that moves its clock (clock-ahead.cjs).
 */
export async function startMeshCa(dir: string, options: { maxTtl?: string; nodeArgs?: readonly string[]; env?: Readonly<Record<string, string>> } = {}): Promise<MeshCa> {
  const caDir = join(dir, 'ca');
  await caInit(caDir, 'mesh.local', false);
  const config = join(dir, 'ca.yaml');
  // log level info: the CA's 'CA server listening' line says which port it bound
  await writeFile(config, `trustDomain: mesh.local\ndir: ${caDir}\nlisten: 127.0.0.1:0\nmaxTtl: ${options.maxTtl ?? '24h'}\nrateLimit: {rate: 1000/s, burst: 1000}\nlog: {level: info}\n`);
  let url: string;
  let proc: MeshcarProcess | undefined;
  let stopServer: () => Promise<unknown>;
  if (options.nodeArgs === undefined && options.env === undefined) {
    const server = await caServe(await loadCaConfig(config), pino({ level: 'silent' }));
    url = server.url;
    stopServer = () => server.close();
  } else {
    const running = startMeshcar(['ca', 'serve', '--config', config], { ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}), ...(options.env ? { env: options.env } : {}) });
    url = String((await running.waitFor((line) => line.msg === 'CA server listening', 15_000)).url);
    stopServer = () => running.stop();
    proc = running;
  }
  // one reusable join token per service (1 h), shared by every sidecar of that service the
  // test starts, as an operator hands one token to a service's replicas
  const tokens = new Map<string, Promise<string>>();
  return {
    dir,
    caDir,
    url,
    bundlePath: join(caDir, 'bundle.pem'),
    ...(proc ? { process: proc } : {}),
    tokenFile(service) {
      let file = tokens.get(service);
      if (!file) {
        const path = join(dir, `${service}.token`);
        file = caToken(caDir, service, HOUR_MS, false).then(async (token) => {
          await writeTokenFile(path, token);
          return path;
        });
        file.catch(() => tokens.delete(service));
        tokens.set(service, file);
      }
      return file;
    },
    async issue(service) {
      const out = join(dir, `offline-${service}`);
      await caIssue(caDir, service, out, DAY_MS);
      const [cert, key, bundle] = await Promise.all(['svid.crt', 'svid.key', 'bundle.pem'].map((f) => readFile(join(out, f), 'utf8')));
      return { cert: cert as string, key: key as string, bundle: bundle as string, dir: out };
    },
    async stop() {
      await stopServer();
    },
  };
}

/** A `meshcar ca serve` process whose JS clock is `aheadMs` ahead of the host's (behind when negative: helpers/clock-ahead.cjs). */
export function startSkewedMeshCa(dir: string, aheadMs: number): Promise<MeshCa> {
  return startMeshCa(dir, {
    maxTtl: '1h',
    nodeArgs: ['--require', new URL('./clock-ahead.cjs', import.meta.url).pathname],
    env: { MESHCAR_TEST_CLOCK_AHEAD_MS: String(aheadMs) },
  });
}

export interface UpstreamSpec {
  readonly name: string;
  readonly endpoints: readonly string[];
  readonly identity: string;
  readonly timeout?: string;
  /** The upstream's `connectTimeout` (default: none written, the sidecar's 5s). */
  readonly connectTimeout?: string;
  readonly routes?: readonly string[];
  /** The upstream's `openapi:` value as YAML flow text, e.g. `{spec: FILE, mode: shadow}`. */
  readonly openapi?: string;
  /** The upstream's `outlierDetection:` as YAML flow text, e.g. `{consecutiveFailures: 1, baseEjection: 60s}`. */
  readonly outlierDetection?: string;
}

export interface SidecarSpec {
  readonly service: string;
  readonly inbound?: { readonly app: string; readonly timeout?: string; readonly authorize?: string; readonly openapi?: string; /** inbound.limits as YAML flow text. */ readonly limits?: string };
  readonly upstreams?: readonly UpstreamSpec[];
  readonly ttl?: string;
  readonly access?: boolean;
  readonly drainTimeout?: string;
  readonly extraYaml?: string;
  /** The CA URL the sidecar is given (default: the CA's own), e.g. a gate in front of it. */
  readonly caUrl?: string;
  /** identity.ca.bundle (default: the CA's own bundle.pem), e.g. a copy made at install time. */
  readonly bundle?: string;
  /** identity.dir (default: a new folder under the CA's test folder). */
  readonly identityDir?: string;
  /** identity.ca.token (default: the service's reusable token, shared by its sidecars), e.g. a single-use one. */
  readonly token?: string;
  /** identity.ca.bundleRefresh (default: the sidecar's, 5m). */
  readonly bundleRefresh?: string;
  /** identity.renewal as YAML flow text, e.g. `{from: 0.25, to: 0.35}` (default: the sidecar's, 0.5 to 0.7 of the lifetime). */
  readonly renewal?: string;
  /**
   * Name fixed listen ports in the config instead of port 0, for a test that edits a listen
   * address in the file: the text must hold the port before the process starts. They are
   * picked free and released first, so another process could take one in between.
   */
  readonly namedPorts?: boolean;
  /**
   * http2.codec of the sidecar (both its inbound and its outbound sessions). Default:
   * MESHCAR_TEST_H2_CODEC if set (a codec-node-*.test.ts file re-runs a whole existing e2e file
   * with the node codec by setting it before importing that file), else no `http2` key (the
   * sidecar's default, meshcar).
   */
  readonly codec?: 'meshcar' | 'node';
  /** Options for node itself (e.g. a test-side `--require` preload, see test/fixtures/loaded-modules.cjs). */
  readonly nodeArgs?: readonly string[];
  /** Variables added to the environment of the sidecar's process (e.g. NODE_CLUSTER_SCHED_POLICY). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long the sidecar may take to listen on its admin port, and then to be ready; default 20 s each (a large spec is compiled first). */
  readonly startTimeoutMs?: number;
  /** log.level (default info). */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Instead of identity.ca: identity.files with these paths (no CA contact, no CSR). */
  readonly files?: { readonly cert: string; readonly key: string; readonly bundle: string };
}

/** The codec a sidecar's config names when the spec names none (MESHCAR_TEST_H2_CODEC). */
export function defaultMeshCodec(): 'meshcar' | 'node' | undefined {
  const value = process.env.MESHCAR_TEST_H2_CODEC;
  return value === 'meshcar' || value === 'node' ? value : undefined;
}

export interface RunningSidecar {
  /** The `meshcar ca serve` process, when it runs as one (startMeshCa's nodeArgs or env). */
  readonly process?: MeshcarProcess;
  readonly adminPort: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly configFile: string;
  admin(path: string): Promise<{ status: number; body: string }>;
  /**
   * Ends the process (SIGTERM unless told) and resolves with its exit code. Teardowns end
   * sidecars with an outbound side with SIGKILL: on SIGTERM an outbound keeps serving until its
   * app has been quiet for 1 s (a product rule, checked in drain.test.ts), a second per test
   * that no teardown looks at.
   */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A sidecar process whose admin port is up; it may still be fetching its identity. */
export interface LaunchedSidecar {
  /** The `meshcar ca serve` process, when it runs as one (startMeshCa's nodeArgs or env). */
  readonly process?: MeshcarProcess;
  readonly adminPort: number;
  readonly configFile: string;
  admin(path: string): Promise<{ status: number; body: string }>;
  /** Resolves once the sidecar logs 'sidecar ready' (identity loaded, every listener bound). */
  ready(timeoutMs?: number): Promise<RunningSidecar>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

let launched = 0;

export async function startSidecar(ca: MeshCa, spec: SidecarSpec): Promise<RunningSidecar> {
  return (await launchSidecar(ca, spec)).ready(spec.startTimeoutMs);
}

/** Starts `meshcar run` and returns once its admin port listens (read from its log). */
export async function launchSidecar(ca: MeshCa, spec: SidecarSpec): Promise<LaunchedSidecar> {
  const [adminListen, inboundListen, outboundListen] = spec.namedPorts ? await Promise.all([freePort(), freePort(), freePort()]) : [0, 0, 0];
  const name = `${spec.service}-${++launched}`;
  const identity = spec.files
    ? ['identity:', `  files: {cert: ${spec.files.cert}, key: ${spec.files.key}, bundle: ${spec.files.bundle}}`]
    : [
        'identity:',
        '  ca:',
        `    url: ${spec.caUrl ?? ca.url}`,
        `    bundle: ${spec.bundle ?? ca.bundlePath}`,
        `    token: ${spec.token ?? (await ca.tokenFile(spec.service))}`,
        ...(spec.bundleRefresh ? [`    bundleRefresh: ${spec.bundleRefresh}`] : []),
        `  dir: ${spec.identityDir ?? join(ca.dir, `id-${name}`)}`,
        `  ttl: ${spec.ttl ?? '1h'}`,
        ...(spec.renewal ? [`  renewal: ${spec.renewal}`] : []),
      ];
  const lines = [`service: ${spec.service}`, 'trustDomain: mesh.local', ...identity];
  if (spec.inbound) {
    lines.push('inbound:', `  listen: 127.0.0.1:${inboundListen}`, `  app: ${spec.inbound.app}`, `  timeout: ${spec.inbound.timeout ?? '5s'}`);
    if (spec.inbound.authorize) lines.push(spec.inbound.authorize);
    if (spec.inbound.openapi) lines.push(`  openapi: ${spec.inbound.openapi}`);
    if (spec.inbound.limits) lines.push(`  limits: ${spec.inbound.limits}`);
  }
  if (spec.upstreams) {
    lines.push('outbound:', `  listen: 127.0.0.1:${outboundListen}`, '  upstreams:');
    for (const u of spec.upstreams) {
      lines.push(`    ${u.name}:`, `      endpoints: [${u.endpoints.join(', ')}]`, `      identity: ${u.identity}`, `      timeout: ${u.timeout ?? '5s'}`);
      if (u.connectTimeout) lines.push(`      connectTimeout: ${u.connectTimeout}`);
      if (u.routes) lines.push(`      routes: [${u.routes.map((r) => JSON.stringify(r)).join(', ')}]`);
      if (u.openapi) lines.push(`      openapi: ${u.openapi}`);
      if (u.outlierDetection) lines.push(`      outlierDetection: ${u.outlierDetection}`);
    }
  }
  lines.push('admin:', `  listen: 127.0.0.1:${adminListen}`, 'log:', `  level: ${spec.logLevel ?? 'info'}`, `  access: ${spec.access ?? false}`);
  if (spec.drainTimeout) lines.push(`drainTimeout: ${spec.drainTimeout}`);
  const codec = spec.codec ?? defaultMeshCodec();
  if (codec) lines.push('http2:', `  codec: ${codec}`);
  const appClient = defaultTestAppClient();
  if (appClient) lines.push('http1:', `  appClient: ${appClient}`);
  if (spec.extraYaml) lines.push(spec.extraYaml);
  const configFile = join(ca.dir, `${name}.yaml`);
  await writeFile(configFile, `${lines.join('\n')}\n`);
  const proc = startMeshcar(['run', '--config', configFile], { nodeArgs: spec.nodeArgs ?? [], ...(spec.env ? { env: spec.env } : {}) });
  const stop = (signal?: NodeJS.Signals) => proc.stop(signal);
  const portOf = (address: unknown) => Number((address as { port?: unknown } | undefined)?.port ?? 0);
  let adminPort: number;
  try {
    adminPort = portOf((await proc.waitFor((line) => line.msg === 'admin listening', spec.startTimeoutMs ?? 20_000)).address);
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  }
  const admin = (path: string) => httpGet(adminPort, path);
  return {
    process: proc,
    adminPort,
    configFile,
    admin,
    stop,
    async ready(timeoutMs = 20_000) {
      let line: Record<string, unknown>;
      try {
        line = await proc.waitFor((l) => l.msg === 'sidecar ready', timeoutMs);
      } catch (err) {
        await stop('SIGKILL');
        throw err;
      }
      return { process: proc, adminPort, inboundPort: portOf(line.inbound), outboundPort: portOf(line.outbound), configFile, admin, stop };
    },
  };
}

export function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return httpRequest('GET', port, path, headers);
}

/** A POST without a body, e.g. POST /reload on an admin port. */
export function httpPost(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return httpRequest('POST', port, path, headers);
}

function httpRequest(method: string, port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, proc?: MeshcarProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (proc && proc.child.exitCode !== null) throw new Error(`${what}: process exited ${proc.child.exitCode}: ${proc.stderr.join('\n')}`);
    await sleep(50);
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms${proc ? `; stderr: ${proc.stderr.join('\n')}; log: ${JSON.stringify(proc.lines.slice(-5))}` : ''}`);
}

/** Reads a sample value from Prometheus text, e.g. metricValue(text, 'meshcar_upstream_sessions{upstream="orders"}'). */
export function metricValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return undefined;
}

/** Resident set size of a process now and at its peak, in MB (Linux /proc). */
export async function rssOf(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}
