// What both demo runners (make demo, make rotate-demo) do with processes and HTTP: start
// meshcar commands (their warnings shown, their JSON logs not), run a one-shot command, call a
// port, wait for a sidecar's /ready or a TLS port, notice a process that exits before its time,
// and stop everything they started.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import tls from 'node:tls';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
/** The node flags of the `meshcar` launcher (src/cli.ts's first line), for `node dist/cli.js`. */
const LAUNCHER_FLAGS = ['--max-semi-space-size=4', '--heap-growing-percent=50'];
const LAUNCHER_ENV = { UV_THREADPOOL_SIZE: '16' };

const children: ChildProcess[] = [];
/** The one-shot commands running (meshcarCommand): stopAll lets each finish before it returns. */
const oneShots = new Set<ChildProcess>();
/** Each child's last stderr line: why it exited, for the demo's one line. */
const lastError = new WeakMap<ChildProcess, string>();
/** Aborted by stopAll: the waits still polling stop, so nothing keeps the runner alive. */
const stopping = new AbortController();
/** The CA servers among them: stopped last, so no sidecar still running finds its CA gone. */
const cas = new Set<ChildProcess>();

/**
 * A long-running meshcar command (ca serve, run), stopped by stopAll. Each runs in a process
 * group of its own (detached): a terminal's Ctrl-C reaches the whole foreground group, and the
 * children would stop on their own, in no order, and look like crashes; only the runner gets
 * it, and stops them in order (sidecars, then the CA). Refused once stopAll has begun: a
 * start-up step that ends after a stop signal must not start what nothing would stop.
 */
export function startMeshcar(args: string[], label: string): ChildProcess {
  if (stopping.signal.aborted) throw new Error(`the demo is stopping: ${label} is not started`);
  const child = spawn(process.execPath, [...LAUNCHER_FLAGS, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...LAUNCHER_ENV } });
  if (child.stderr) {
    eachLine(child.stderr, (line) => {
      process.stderr.write(`[${label}] ${line}\n`);
      if (line.trim()) lastError.set(child, line.trim());
    });
  }
  // sidecar logs are JSON lines; the demo shows its own summary instead, but warnings matter
  if (child.stdout) showWarnings(child.stdout, label, process.stdout);
  children.push(child);
  if (args[0] === 'ca') cas.add(child);
  return child;
}

/** Calls `onLine` with each whole line of `stream` (a line split across chunks is joined first). */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
}

/** Writes each warning-or-worse JSON log line of `stream` (levels 40, 50, 60) to `out`, prefixed with `[label]`. */
export function showWarnings(stream: Readable, label: string, out: Writable): void {
  eachLine(stream, (line) => {
    if (/"level":(40|50|60)\b/.test(line)) out.write(`[${label}] ${line}\n`);
  });
}

/**
 * Rejects when `child` exits before stopAll stops it (a port clash, a bad config): raced
 * against the demo's waits, so it fails at once instead of waiting out a timeout.
 */
export function exitedEarly(child: ChildProcess, what: string): Promise<never> {
  return new Promise((_done, fail) => {
    child.once('exit', (code, signal) => {
      if (stopping.signal.aborted) return;
      const why = lastError.get(child) ?? 'no message';
      fail(new Error(`${what} exited (${code ?? signal}) before the demo ended: ${why}`));
    });
  });
}

/**
 * A one-shot meshcar command; its output goes to ours (or is returned with `capture`). Relayed,
 * not inherited: with the runner's output gone (`make demo | head -1`) the command itself failed
 * its write and exit 1 ("demo failed"), where the runner's own failed write stops the demo as a
 * hang-up does (onStopSignal).
 */
export async function meshcarCommand(args: string[], options: { capture?: boolean } = {}): Promise<string> {
  // refused once stopAll has begun, and waited for by it: one started or running during a stop
  // (a rotation step's `ca root add`) outlived the runner, still writing in the CA's folder
  if (stopping.signal.aborted) throw new Error(`the demo is stopping: meshcar ${args.join(' ')} is not run`);
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  oneShots.add(child);
  child.once('exit', () => oneShots.delete(child));
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (options.capture ? (out += chunk.toString()) : process.stdout.write(chunk)));
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  if (code !== 0) throw new Error(`meshcar ${args.join(' ')} failed (exit ${code})`);
  return out;
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 });

export function httpCall(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent: keepAlive }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.end(method === 'POST' ? (body ?? '{"item":"book","qty":1}') : undefined);
  });
}

export async function waitReady(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !stopping.signal.aborted) {
    const status = await httpCall(port, '/ready').then((r) => r.status, () => 0);
    if (status === 200) return;
    await pause();
  }
  throw new Error(`${what} did not become ready within 30 s`);
}

/**
 * Until a TLS server answers a handshake on the port (the CA). With `bundleFile`, its certificate
 * must chain to it: another CA that holds the port is refused at once, not taken for ours.
 */
export async function waitTls(port: number, what: string, bundleFile?: string): Promise<void> {
  const bundle = bundleFile === undefined ? undefined : await readFile(bundleFile, 'utf8');
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && !stopping.signal.aborted) {
    const answer = await new Promise<'up' | 'down' | Error>((done) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: bundle, rejectUnauthorized: bundle !== undefined }, () => {
        socket.destroy();
        done('up');
      });
      // a listener that accepts but never answers TLS must not hold the wait for ever
      socket.setTimeout(2000, () => socket.destroy());
      socket.on('error', (err: NodeJS.ErrnoException) => done(bundle && isCertificateError(err) ? err : 'down'));
      socket.on('close', () => done('down'));
    });
    if (answer === 'up') return;
    if (answer instanceof Error) throw new Error(`something else answers on 127.0.0.1:${port}: its certificate is not ${what}'s (${answer.message})`);
    await pause();
  }
  throw new Error(`${what} did not start within 15 s`);
}

/** OpenSSL's verify codes (UNABLE_TO_GET_ISSUER_CERT_LOCALLY …) and a name mismatch; not ECONNREFUSED and the like. */
const isCertificateError = (err: NodeJS.ErrnoException) => err.code === 'ERR_TLS_CERT_ALTNAME_INVALID' || !(err.code ?? 'E').startsWith('E');

const pause = () => sleep(100, undefined, { signal: stopping.signal }).catch(() => undefined);

/**
 * SIGTERM to every process started here (SIGKILL after 12 s), and the given servers closed; a
 * one-shot command under way is let finish first (SIGKILL after 12 s), and none starts after.
 * Safe to call again (a stop signal during start-up, then the runner's own clean-up): each
 * process is signalled once, and the last line is printed once, when every process has exited.
 */
export async function stopAll(servers: readonly http.Server[] = []): Promise<void> {
  stopping.abort();
  keepAlive.destroy();
  for (const server of servers) {
    server.close();
    server.closeAllConnections(); // idle keep-alive callers would hold it (and the runner) open
  }
  // a one-shot under way (a CA step) ends on its own: cut, it could leave a step half done
  await Promise.all([...oneShots].map((child) => exitOf(child)));
  // the sidecars first: one that outlived the CA would warn it cannot fetch the CA's bundle
  await stopEach(children.filter((child) => !cas.has(child)));
  await stopEach([...cas]);
  // nothing started yet (a bad DEMO_PORT_BASE, a port taken): no line saying processes stopped
  if (!saidStopped && (children.length > 0 || servers.length > 0)) console.log('stopped every process the demo started');
  saidStopped = true;
}

let saidStopped = false;
/** Each process's exit once stopEach has signalled it. */
const exits = new WeakMap<ChildProcess, Promise<void>>();

/** SIGTERM to each, SIGKILL to one that has not exited 12 s later; resolves when all exited. */
function stopEach(list: ChildProcess[]): Promise<unknown> {
  return Promise.all(list.map((child) => exits.get(child) ?? stopOne(child)));
}

function stopOne(child: ChildProcess): Promise<void> {
  const exited = exitOf(child, 'SIGTERM');
  exits.set(child, exited);
  return exited;
}

/** Resolves when `child` has exited, after `signal` if one is given; SIGKILL if it has not within 12 s. */
function exitOf(child: ChildProcess, signal?: NodeJS.Signals): Promise<void> {
  return new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const timer = setTimeout(() => child.kill('SIGKILL'), 12_000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    if (signal) child.kill(signal);
  });
}

/**
 * SIGINT (a terminal's Ctrl-C), SIGTERM, SIGHUP (the terminal closed) and SIGQUIT (Ctrl-\)
 * call `onSignal` with the signal, the first time; a repeat is reported and ignored (the stop
 * under way ends every process, SIGKILL after 12 s). Installed first thing: a signal at any
 * time stops what the demo started. The children have sessions of their own (startMeshcar), so
 * a hang-up reaches only the runner: left to its default it ended the runner alone, and the CA
 * and both sidecars ran on, holding the ports (the next `make demo` said another one runs here).
 * A write to stdout or stderr that fails (the reader gone: EPIPE, EIO) stops it as SIGPIPE.
 */
export function onStopSignal(onSignal: (signal: NodeJS.Signals) => void): void {
  let first: NodeJS.Signals | undefined;
  const handle = (signal: NodeJS.Signals) => {
    if (first) {
      console.log(`${signal}: already stopping (after ${first}); every process gets SIGKILL 12 s after its SIGTERM`);
      return;
    }
    first = signal;
    onSignal(signal);
  };
  process.on('SIGINT', handle).on('SIGTERM', handle).on('SIGHUP', handle).on('SIGQUIT', handle);
  // the output's reader gone (piped into `head`, which exits; a closed terminal): a write fails
  // with EPIPE or EIO, which ended the runner unhandled and left the CA and both sidecars (in
  // sessions of their own) running, holding the ports. It stops everything as a hang-up does;
  // later writes fail silently, and do not come back here once the stop is under way
  const readerGone = () => {
    if (!first) handle('SIGPIPE');
  };
  for (const out of [process.stdout, process.stderr]) out.on('error', readerGone);
}

// last resort: the runner ending any other way (an error nothing caught) still signals what it
// started; each child is in a session of its own, so nothing else would
process.on('exit', () => {
  for (const child of [...children, ...oneShots]) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
});

/** stopAll has begun (a failure, or the end): loops still driving traffic end. */
export function demoStopping(): boolean {
  return stopping.signal.aborted;
}
