// Test helper: runs meshcar's real command line as a child process, reads its JSON log lines,
// and waits for a line that matches. Every process is killed at teardown.

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';
import { repeatedTopLevelKeys } from './log-keys.js';

export interface MeshcarProcess {
  readonly child: ChildProcess;
  readonly lines: Array<Record<string, unknown>>;
  readonly stderr: string[];
  /** stdout lines that repeat a top-level key, with the keys (log-keys.ts). */
  readonly repeatedKeys: Array<{ readonly keys: readonly string[]; readonly line: string }>;
  waitFor(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited(): Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

/**
 * `prefix`: a command the process runs under, e.g. ['ip', 'netns', 'exec', NS] (it execs node in place, so the pid is meshcar's).
 * `nodeArgs`: options for node itself, before the script (e.g. a test-side `--require` preload).
 * `env`: variables added to this process's environment for the child (e.g. the preload's setting).
 */
export function startMeshcar(args: string[], options: { cwd?: string; prefix?: readonly string[]; nodeArgs?: readonly string[]; env?: Readonly<Record<string, string>> } = {}): MeshcarProcess {
  const [command, ...before] = options.prefix && options.prefix.length > 0 ? [...options.prefix, process.execPath] : [process.execPath];
  const child = spawn(command as string, [...before, ...(options.nodeArgs ?? []), CLI, ...args], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: { ...process.env, ...options.env } } : {}) });
  const lines: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  const repeatedKeys: Array<{ keys: string[]; line: string }> = [];
  const waiters: Array<{ predicate: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { msg: text };
    }
    lines.push(line);
    const keys = repeatedTopLevelKeys(text);
    if (keys.length > 0) repeatedKeys.push({ keys, line: text });
    for (const waiter of [...waiters]) {
      if (waiter.predicate(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text));
  // 'exit' can come before the last lines of stdout are read: the process's end waits for its
  // pipes to close as well ('close'), bounded, as a worker that outlives it may hold them open
  const pipesClosed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))).then(async (code) => {
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([pipesClosed, new Promise<void>((resolve) => (bound = setTimeout(resolve, 2_000)))]);
    clearTimeout(bound);
    return code;
  });
  return {
    child,
    lines,
    stderr,
    repeatedKeys,
    waitFor(predicate, timeoutMs = 15_000) {
      const seen = lines.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.join('\n')}; last lines: ${JSON.stringify(lines.slice(-5))}`)), timeoutMs);
        const onExit = () => reject(new Error(`meshcar exited before the expected log line; stderr: ${stderr.join('\n')}`));
        child.once('exit', onExit);
        waiters.push({
          predicate,
          resolve: (line) => {
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(line);
          },
        });
      });
    },
    exited: () => exit,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exit;
      clearTimeout(timer);
      return code;
    },
  };
}

/**
 * A port that was free a moment ago on 127.0.0.1, and is released again: only for a port that
 * must stay closed (an app or upstream that is down, an address a reload names but never binds)
 * or one a config must name before anything can report a port back. Anything that listens is
 * started on port 0 and its bound port read back instead where it can be.
 *
 * Drawn at random from 10000-14999, below the ephemeral range (32768 and up here) and clear of
 * the demo's ports (15000-18443, and the demo tests' moved ports: 2000-9943, 20000-29243): a port-0 bind
 * would hand out an ephemeral port, which any client socket of a test running beside this one
 * may take before the port is bound again (a CI run lost a sidecar start to exactly that:
 * EADDRINUSE on its named inbound port). Only another caller of this function draws here.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 5_000);
    if (await bindable(port)) return port;
  }
  throw new Error('no free port in 10000-14999 after 100 draws');
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
