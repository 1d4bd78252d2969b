// Test helper: a real `prometheus` (Debian's package; `make tools` installs it) on loopback, with
// a temp storage folder, scraping and evaluating every second, and its HTTP query API as an
// operator's dashboards and alerts read it. Listens on port 0: the port is read from its own
// 'Listening on' log line. Not installed is a failure that says so, never a skip.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpGet } from './mesh.js';

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface PromAnswer {
  readonly status: 'success' | 'error';
  readonly errorType?: string;
  readonly error?: string;
  readonly data?: { resultType: string; result: PromSample[] | [number, string] };
}

export interface Prometheus {
  /** Its log lines so far (stdout and stderr). */
  readonly log: string[];
  /** Its HTTP port, known once ready() resolved. */
  port(): number;
  /** Resolves once it listens and /-/ready answers 200. */
  ready(): Promise<void>;
  query(expr: string): Promise<PromAnswer>;
  /** An instant query's samples; an error answer throws, naming the expression. */
  vector(expr: string): Promise<PromSample[]>;
  /** Polls `check` every 50 ms for at most `waitMs`; the error says `what` and `describe()` (what was last seen). */
  eventually(what: string, check: () => Promise<boolean>, describe: () => string, waitMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export const PROMETHEUS_WAIT_MS = 30_000;

function installed(): boolean {
  return spawnSync('prometheus', ['--version'], { encoding: 'utf8' }).error === undefined;
}

/**
 * Starts Prometheus in `dir` (its config, storage and rule files go there) with scrape and
 * evaluation intervals of 1 s; `config` is the rest of prometheus.yml (scrape_configs,
 * rule_files), as YAML text. Returns at once: call ready() before querying.
 */
export async function launchPrometheus(dir: string, config: string): Promise<Prometheus> {
  if (!installed()) {
    throw new Error("the `prometheus` binary is not installed: run `make tools` (it installs Debian's prometheus package) or `apt-get install prometheus`");
  }
  await mkdir(join(dir, 'data'), { recursive: true });
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, ['global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', '  evaluation_interval: 1s', config].join('\n'));
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0', '--storage.tsdb.retention.time=1h', '--log.level=info'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log: string[] = [];
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (c: Buffer) => {
      output += c.toString();
      log.push(...c.toString().trimEnd().split('\n'));
    });
  }
  let port = 0;

  const eventually: Prometheus['eventually'] = async (what, check, describe, waitMs = PROMETHEUS_WAIT_MS) => {
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      if (await check().catch(() => false)) return;
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${log.slice(-10).join('\n')}`);
      await sleep(50);
    }
    throw new Error(`${what} not seen in Prometheus within ${waitMs / 1000} s; last: ${describe()}`);
  };
  const query = async (expr: string): Promise<PromAnswer> => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as PromAnswer;
  };

  return {
    log,
    port: () => port,
    async ready() {
      // port 0: Prometheus binds a free port and logs it (msg="Listening on" address=127.0.0.1:PORT)
      await eventually('its listening address', async () => (port = Number(/msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(output)?.[1] ?? 0)) > 0, () => log.slice(-5).join('\n'));
      await eventually('/-/ready', async () => (await httpGet(port, '/-/ready')).status === 200, () => log.slice(-5).join('\n'));
    },
    query,
    async vector(expr) {
      const answer = await query(expr);
      if (answer.status !== 'success') throw new Error(`${expr}: ${answer.errorType}: ${answer.error}`);
      return answer.data?.resultType === 'vector' ? (answer.data.result as PromSample[]) : [];
    },
    eventually,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The alert rules the README gives under "Alert before anything expires" (Rotating the CA), as
 * a rule file Prometheus and `promtool check rules` load: one group, `meshcar-ca`.
 */
export async function readmeAlertRules(): Promise<string> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
  const after = readme.slice(readme.indexOf('Alert before anything expires'));
  const block = /```yaml\n([\s\S]*?)```/.exec(after)?.[1] ?? '';
  return `groups:\n- name: meshcar-ca\n  rules:\n${block.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n')}`;
}
