// Test helper for meshes across network namespaces (see netns.ts): a dnsmasq DNS server whose
// records a test changes (addn-hosts file + SIGHUP), the per-host agent (the host's app and a
// Unix-socket door into the host's loopback, test/e2e/fixtures/netns-agent.mjs), meshcar
// processes started inside a host, and a traffic generator that plays the frontend app.

import http from 'node:http';
import { createInterface } from 'node:readline';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startMeshcar, type MeshcarProcess } from './process.js';
import type { TestNetwork } from './netns.js';

const AGENT = new URL('../e2e/fixtures/netns-agent.mjs', import.meta.url).pathname;

/** Reads a child's stdout/stderr lines and waits, bounded, for one that matches. */
export class LineWatch {
  readonly lines: Array<{ at: number; text: string }> = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (text) => {
        this.lines.push({ at: Date.now(), text });
        for (const wake of [...this.waiters]) wake();
      });
    }
  }

  /** The first line after index `from` matching `pattern`. */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<{ at: number; text: string }> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.slice(from).find((line) => pattern.test(line.text));
        if (!hit) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; last: ${JSON.stringify(this.lines.slice(-5).map((l) => l.text))}`));
      }, timeoutMs);
      if (!check()) this.waiters.add(check);
    });
  }
}

/** dnsmasq inside a host, answering only from an addn-hosts file (no upstream, nothing forwarded). */
export class DnsServer {
  readonly log: LineWatch;

  private constructor(private readonly child: ChildProcess, private readonly file: string) {
    this.log = new LineWatch(child);
  }

  static async start(net: TestNetwork, host: string, address: string, dir: string, domain: string, records: ReadonlyArray<[string, string]>): Promise<DnsServer> {
    const file = join(dir, 'mesh.hosts');
    await writeFile(file, hostsText(records));
    const child = net.spawn(host, 'dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${file}`,
      `--listen-address=${address}`, '--bind-interfaces', '--user=root', '--pid-file=', '--log-facility=-', '--log-queries',
      // every name under the domain is answered here (NXDOMAIN when unknown), never forwarded
      `--local=/${domain}/`,
      // local-ttl 0 (the default, stated): answers are not cached by whoever asks
      '--local-ttl=0',
    ]);
    const server = new DnsServer(child, file);
    await server.log.waitFor(new RegExp(`read ${escapeRegExp(file)} - ${records.length} names`), 5000);
    return server;
  }

  /** Replaces every record and reloads (SIGHUP); resolves once dnsmasq says it read the file. */
  async setRecords(records: ReadonlyArray<[string, string]>): Promise<number> {
    await writeFile(this.file, hostsText(records));
    const from = this.log.lines.length;
    this.child.kill('SIGHUP');
    return (await this.log.waitFor(new RegExp(`read ${escapeRegExp(this.file)} - ${records.length} names`), 5000, from)).at;
  }

  /** When `client` asked for the A record of `name`, from dnsmasq's query log. */
  queriesFrom(client: string, name: string): number[] {
    return this.log.lines.filter((l) => l.text.includes(`query[A] ${name} from ${client}`)).map((l) => l.at);
  }
}

function hostsText(records: ReadonlyArray<[string, string]>): string {
  return records.map(([address, name]) => `${address} ${name}\n`).join('');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The agent of one host: its app on 127.0.0.1:appPort and the door at `socket`. */
export async function startAgent(net: TestNetwork, host: string, socket: string, appPort: number): Promise<void> {
  const child = net.spawn(host, process.execPath, [AGENT, host, socket, String(appPort)]);
  await new LineWatch(child).waitFor(/"ready":true/, 20_000);
}

/** `meshcar ARGS` inside a host; killed with the network. */
export function meshcarIn(net: TestNetwork, host: string, args: string[]): MeshcarProcess {
  const proc = startMeshcar(args, { prefix: ['ip', 'netns', 'exec', net.ns(host)] });
  net.track(proc.child);
  return proc;
}

export interface DoorResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

const doorAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });

/** A request to 127.0.0.1:port inside a host, through its agent's door; rejects after timeoutMs. */
export function viaDoor(socket: string, port: number, path: string, headers: Record<string, string> = {}, timeoutMs = 5000): Promise<DoorResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: `/port/${port}${path}`, headers, agent: doorAgent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export function closeDoors(): void {
  doorAgent.destroy();
}

export interface CallRecord {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly status: number;
  /** Which app answered (its host name), for 200s. */
  readonly host: string | undefined;
  readonly detail: string;
}

/**
 * Continuous GETs (idempotent) from the frontend's host through its sidecar's outbound port,
 * `workers` at a time, each worker at most one call per `paceMs` (a steady load that leaves
 * the CPU to the processes under test).
 */
export class Traffic {
  readonly calls: CallRecord[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly door: string, private readonly outboundPort: number, private readonly upstream: string) {}

  start(workers: number, paceMs: number): void {
    this.running = true;
    for (let i = 0; i < workers; i++) this.loops.push(this.loop(paceMs));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  servedBy(host: string, since = 0): number {
    return this.calls.filter((c) => c.host === host && c.startedAt >= since).length;
  }

  failures(since = 0, until = Infinity): CallRecord[] {
    return this.calls.filter((c) => c.status !== 200 && c.startedAt >= since && c.startedAt < until);
  }

  /** Resolves once `condition` holds after a call; rejects after timeoutMs saying what was awaited. */
  until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const byHost: Record<string, number> = {};
        for (const c of this.calls) byHost[c.host ?? `status ${c.status}`] = (byHost[c.host ?? `status ${c.status}`] ?? 0) + 1;
        reject(new Error(`${what}: not within ${timeoutMs} ms (calls so far: ${JSON.stringify(byHost)})`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  private async loop(paceMs: number): Promise<void> {
    while (this.running) {
      const startedAt = Date.now();
      let record: CallRecord;
      try {
        const res = await viaDoor(this.door, this.outboundPort, `/orders/${++this.seq}`, { host: this.upstream }, 10_000);
        const host = res.status === 200 ? (JSON.parse(res.body) as { host: string }).host : undefined;
        record = { startedAt, endedAt: Date.now(), status: res.status, host, detail: res.status === 200 ? '' : `${String(res.headers['x-meshcar-error'] ?? res.headers['x-agent-error'] ?? '')} ${res.body.slice(0, 200)}` };
      } catch (err) {
        record = { startedAt, endedAt: Date.now(), status: 0, host: undefined, detail: (err as Error).message };
      }
      this.calls.push(record);
      for (const wake of [...this.waiters]) wake();
      const rest = paceMs - (Date.now() - startedAt);
      if (rest > 0 && this.running) await new Promise((resolve) => setTimeout(resolve, rest));
    }
  }
}
