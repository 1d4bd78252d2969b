// Test helper: a real meshcar CA (files on disk, HTTPS server on a loopback port) and a real
// HTTPS client for its API. Nothing is mocked: requests cross a socket and TLS.

import https, { request } from 'node:https';
import { once } from 'node:events';
import { createPublicKey } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClientRequest } from 'node:http';
import { svidProofHeader } from '../../src/pki/svid-proof.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { initCaDirectory } from '../../src/ca/store.js';
import { caServe, caToken, openAuthority } from '../../src/ca/commands.js';
import { generateWorkloadKey } from '../../src/pki/keys.js';
import type { CaConfig } from '../../src/config/ca-config.js';
import { Metrics } from '../../src/metrics/registry.js';
import type { RunningCaServer } from '../../src/ca/server.js';
import type { CaConnectionLimits } from '../../src/ca/connection-limits.js';

export const execFileAsync = promisify(execFile);

export interface TestCa {
  readonly dir: string;
  readonly config: CaConfig;
  server: RunningCaServer;
  readonly metrics: Metrics;
  readonly logLines: Array<Record<string, unknown>>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** A logger whose JSON lines are kept in memory for assertions. */
export function memoryLogger(lines: Array<Record<string, unknown>>, level = 'info'): Logger {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level }, sink);
}

/**
 * CA directories this test process made: removed when it exits, also those of a test that
 * failed before its teardown or never closed its CA (128 were left in the system's temporary
 * directory over a day of runs).
 */
const caDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of caDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * A join token of meshcar's form (ES256 header, subject, expiry in an hour) that no CA signed:
 * for a start whose CA never gets to judge it (unreachable, another trust domain's); a sidecar
 * refuses a file that is not of this form before it calls the CA, as `meshcar check` does.
 */
export function unsignedToken(service = 'orders', trustDomain = 'mesh.local'): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ sub: `spiffe://${trustDomain}/svc/${service}`, exp: Math.floor(Date.now() / 1000) + 3600 })}.${Buffer.from('not signed').toString('base64url')}`;
}

export async function makeCaDir(trustDomain = 'mesh.local'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshcar-ca-'));
  caDirs.add(dir);
  await initCaDirectory(join(dir, 'ca'), trustDomain, { force: false });
  return join(dir, 'ca');
}

export async function startTestCa(overrides: Partial<CaConfig> = {}, dir?: string, connectionLimits?: Partial<CaConnectionLimits>): Promise<TestCa> {
  const caDir = dir ?? (await makeCaDir(overrides.trustDomain ?? 'mesh.local'));
  const config: CaConfig = {
    file: 'test',
    trustDomain: 'mesh.local',
    dir: caDir,
    listen: { host: '127.0.0.1', port: 0 },
    serverNames: ['localhost', '127.0.0.1'],
    maxTtlMs: 86_400_000,
    defaultTtlMs: 86_400_000,
    rateLimit: { perSecond: 1000, burst: 1000 },
    log: { level: 'info' },
    ...overrides,
  };
  const logLines: Array<Record<string, unknown>> = [];
  const metrics = new Metrics();
  const logger = memoryLogger(logLines);
  const ca: TestCa = {
    dir: caDir,
    config,
    metrics,
    logLines,
    server: await caServe(config, logger, metrics, connectionLimits),
    async restart() {
      await ca.server.close();
      ca.server = await caServe(config, logger, metrics, connectionLimits);
    },
    async close() {
      await ca.server.close();
      await rm(join(caDir, '..'), { recursive: true, force: true });
    },
  };
  return ca;
}

/** A CA ready to sign for one service: the CA, its bundle (to trust its server) and a multi-use join token (an hour). */
export async function startSigningCa(service = 'orders'): Promise<{ ca: TestCa; bundle: string; token: string }> {
  const ca = await startTestCa();
  const bundle = await readFile(join(ca.dir, 'bundle.pem'), 'utf8');
  const token = await caToken(ca.dir, service, 3_600_000, false);
  return { ca, bundle, token };
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json(): Record<string, unknown>;
}

export interface ApiRequest {
  readonly method?: string;
  readonly path: string;
  readonly body?: string | Buffer;
  readonly headers?: Record<string, string>;
  /** The current SVID (chain, leaf first) and its key: a renewal, proven on the connection as a sidecar does. */
  readonly cert?: string;
  readonly key?: string;
  readonly ca: string;
}

export function callCa(url: string, req: ApiRequest): Promise<ApiResponse> {
  const target = new URL(req.path, url);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      target,
      {
        method: req.method ?? 'GET',
        headers: { ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}), ...req.headers },
        ca: req.ca,
        servername: 'localhost',
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> });
        });
      },
    );
    outgoing.on('error', reject);
    if (req.cert === undefined) {
      outgoing.end(req.body);
      return;
    }
    endWithSvidProof(outgoing, { cert: req.cert, key: req.key ?? '' }, req.body);
  });
}

/**
 * Ends `outgoing` (a request not yet ended) as a sidecar's renewal does: once its connection's
 * handshake is done (at once on a kept-alive one), with the SVID (cert: chain, leaf first)
 * proven on that connection in its Authorization header.
 */
export function endWithSvidProof(outgoing: ClientRequest, svid: { cert: string; key: string }, body?: string | Buffer): void {
  outgoing.once('socket', (socket) => {
    const tlsSocket = socket as TLSSocket;
    const prove = () => {
      outgoing.setHeader('authorization', svidProofHeader(tlsSocket, svid.cert, svid.key));
      outgoing.end(body);
    };
    if (outgoing.reusedSocket) prove();
    else tlsSocket.once('secureConnect', prove);
  });
}

/** Runs openssl with text on its standard input; resolves with stdout, rejects on exit ≠ 0. */
export function openssl(args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, (err, stdout, stderr) => (err ? reject(new Error(`openssl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
    // openssl may exit before reading its input (verify reads files only): the pipe's EPIPE is
    // not the command's failure, its exit code says that (seen under load as an uncaught EPIPE)
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/** Runs `meshcar ARGS` (dist/cli.js) to its end: exit code and both outputs, never a rejection. */
export function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [new URL('../../dist/cli.js', import.meta.url).pathname, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** `promtool check metrics` on a metrics text: exit code and what it said. */
export function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') resolve({ code: 127, output: "promtool is not installed: run `make tools` (Debian's prometheus package has it)" });
      else resolve({ code: err ? Number(code ?? 1) : 0, output: stdout + stderr });
    });
    child.stdin?.end(text);
  });
}

/** An HTTPS server (on `port`, else one port 0 gives) whose certificate chains to the CA's bundle but names `spiffeId`, not the CA. */
export async function impostor(caDir: string, spiffeId: string, port = 0): Promise<{ server: https.Server; url: string }> {
  const authority = await openAuthority(caDir, { maxTtlMs: 3_600_000, defaultTtlMs: 3_600_000 });
  const keys = await generateWorkloadKey();
  const issued = await authority.issue(spiffeId, createPublicKey(keys.publicKeyPem).export({ type: 'spki', format: 'der' }), undefined, ['127.0.0.1', 'localhost']);
  const server = https.createServer({ key: keys.privateKeyPem, cert: issued.chain }, (_req, res) => res.end('{}'));
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
