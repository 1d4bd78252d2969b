// Test helper: a small private network of Linux network namespaces ("hosts") for multi-host
// tests. A switch namespace holds a bridge; each host gets a veth pair (one end on the bridge,
// the other as eth0 in the host) and addresses in 198.51.100.0/24 (TEST-NET-2, a documentation
// range) assigned inside the host only. Nothing is created in the caller's own namespace: the
// bridge and every veth live in namespaces made here, so deleting them removes everything.
// Processes run inside a host with `ip netns exec`, which also bind-mounts /etc/netns/<ns>/*
// over /etc (a resolv.conf per host). cleanup() is idempotent and synchronous-safe, so a test
// calls it from t.teardown and again from process 'exit'.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const SUBNET_PREFIX = '198.51.100.';

/** Why namespaces cannot be made here (not root, no `ip`, no netns support), or undefined if they can. */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespaces need root (run the tests as root, as CI does)';
  const probe = `mcprobe${process.pid.toString(36)}`;
  try {
    await execFileAsync('ip', ['netns', 'add', probe]);
  } catch (err) {
    return `\`ip netns\` is unavailable: ${(err as Error).message.split('\n')[0]} (make tools installs iproute2)`;
  }
  await execFileAsync('ip', ['netns', 'del', probe]).catch(() => undefined);
  return undefined;
}

export interface HostOptions {
  /** Extra addresses on eth0 (a second service address on the same host). */
  readonly extraAddresses?: readonly string[];
  /** Nameserver for this host's resolv.conf. */
  readonly nameserver?: string;
  /** eth0 starts down (the host is cut off until setLink(host, true)). Default up. */
  readonly down?: boolean;
}

export class TestNetwork {
  /** Short and unique per process: interface and namespace names stay within 15 characters. */
  readonly prefix = `mh${process.pid.toString(36)}`;
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<ChildProcess>();
  private readonly switchNs = `${this.prefix}-sw`;
  private hostCount = 0;
  private cleaned = false;

  /** The switch: a namespace holding one bridge. */
  async create(): Promise<void> {
    await this.addNamespace(this.switchNs);
    await this.ip(['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await this.ip(['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
  }

  /** The namespace name of a host. */
  ns(host: string): string {
    return `${this.prefix}-${host}`;
  }

  /** A host with eth0 on the bridge and `address`/24 on it. */
  async addHost(host: string, address: string, options: HostOptions = {}): Promise<void> {
    const ns = this.ns(host);
    const port = `p${++this.hostCount}`;
    await this.addNamespace(ns);
    if (options.nameserver) {
      mkdirSync(`/etc/netns/${ns}`, { recursive: true });
      // short timeouts: a lookup against a host that is cut off fails fast instead of hanging
      writeFileSync(`/etc/netns/${ns}/resolv.conf`, `nameserver ${options.nameserver}\noptions timeout:1 attempts:1\n`);
      writeFileSync(`/etc/netns/${ns}/hosts`, '127.0.0.1 localhost\n');
    }
    await this.ip(['-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ip(['-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
    await this.ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    for (const a of [address, ...(options.extraAddresses ?? [])]) await this.ip(['-n', ns, 'addr', 'add', `${a}/24`, 'dev', 'eth0']);
    if (!options.down) await this.setLink(host, true);
  }

  /** Brings a host's eth0 up or down (down: its connected route goes, connects fail at once). */
  async setLink(host: string, up: boolean): Promise<void> {
    await this.ip(['-n', this.ns(host), 'link', 'set', 'eth0', up ? 'up' : 'down']);
  }

  /** Runs `ip` with these arguments inside a host, e.g. ['route', 'add', 'unreachable', 'X/32']. */
  async ipIn(host: string, args: readonly string[]): Promise<string> {
    return this.ip(['-n', this.ns(host), ...args]);
  }

  /** Runs a command inside a host to completion; resolves with stdout. */
  async exec(host: string, command: string, args: readonly string[]): Promise<string> {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', this.ns(host), command, ...args]);
    return stdout;
  }

  /** Starts a long-running command inside a host; it is killed (SIGKILL) by cleanup(). */
  spawn(host: string, command: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(host), command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(child);
    return child;
  }

  /** A process started some other way inside one of these hosts: killed by cleanup() too. */
  track(child: ChildProcess): void {
    this.processes.add(child);
    child.once('exit', () => this.processes.delete(child));
  }

  /** Pids of the processes started here and still running. */
  pids(): number[] {
    return [...this.processes].map((child) => child.pid).filter((pid): pid is number => pid !== undefined);
  }

  /** Kills every process started here, then deletes every namespace (with its veths and the bridge). */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    const exits = [...this.processes].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }));
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    this.cleanupSync();
  }

  /** The same, synchronously, for process 'exit' (a run cut short): no waiting for exits. */
  cleanupSync(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const child of this.processes) child.kill('SIGKILL');
    for (const ns of [...this.namespaces].reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone
      }
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
  }

  /**
   * Namespaces left by an earlier run that was killed before its teardown (its pid, in the
   * name, is gone): their processes are killed and they are deleted. Names not of this shape
   * are never touched.
   */
  static async sweepStale(): Promise<string[]> {
    const { stdout } = await execFileAsync('ip', ['netns', 'list']);
    const stale = stdout.split('\n').map((line) => line.split(' ')[0] as string).filter((name) => {
      const m = /^mh([0-9a-z]+)-(sw|dns|h\d+)$/.exec(name);
      return m !== null && !pidAlive(parseInt(m[1] as string, 36));
    });
    for (const ns of stale) {
      const pids = (await execFileAsync('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter(Boolean);
      for (const pid of pids) if (pidAlive(Number(pid))) process.kill(Number(pid), 'SIGKILL');
      await execFileAsync('ip', ['netns', 'del', ns]).catch(() => undefined);
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    return stale;
  }

  /** Namespaces of this run still present (for the test's own check that cleanup worked). */
  static async leftovers(prefix: string): Promise<string[]> {
    const { stdout } = await execFileAsync('ip', ['netns', 'list']);
    return stdout.split('\n').map((line) => line.split(' ')[0] as string).filter((name) => name.startsWith(`${prefix}-`));
  }

  private async addNamespace(ns: string): Promise<void> {
    // recorded before it exists: a failure half-way is still cleaned up
    this.namespaces.push(ns);
    await this.ip(['netns', 'add', ns]);
  }

  private async ip(args: readonly string[]): Promise<string> {
    try {
      const { stdout } = await execFileAsync('ip', args);
      return stdout;
    } catch (err) {
      throw new Error(`ip ${args.join(' ')}: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`);
    }
  }
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
