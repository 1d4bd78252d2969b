// How many workers `workers: auto` starts: the cores this process may use, which is the least of
// the cores Node sees (os.availableParallelism(): the CPU affinity), the container's CPU limit
// (the cgroup CPU quota: Node 20's libuv does not read it, so a pod limited to 2 CPUs on a
// 96-core node would fork 96 workers that share 2 CPUs) and MAX_WORKERS, and at least 1.
// The limit is looked for in this process's own cgroup and each of its parents (the least one
// holds: the kernel enforces every level), found from /proc/self/cgroup: the mount's top holds it
// only inside a cgroup namespace (Docker, containerd, CRI-O); a systemd unit's CPUQuota=, or a
// container without its own namespace, is further down, and auto read no limit at all there.
// The cgroup files are parsed by pure functions taking their text; the reading takes the
// mount point and the text of /proc/self/cgroup, so a test hands it a directory of real file contents.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { MAX_WORKERS, type Workers } from '../config/sidecar-config.js';

/** Where a container sees its own cgroup (cgroup namespaces: Docker, containerd, CRI-O). */
export const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * The CPUs a cgroup v2 `cpu.max` ("<quota> <period>" in µs, or "max <period>") allows,
 * rounded up (1.5 CPUs run 2 workers' worth of work in bursts); undefined when unlimited or unreadable.
 */
export function cpusOfCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  return cpusOf(Number(quota), Number(period ?? 100_000));
}

/** The same for cgroup v1: cpu.cfs_quota_us (-1 is unlimited) and cpu.cfs_period_us. */
export function cpusOfCfs(quotaText: string, periodText: string): number | undefined {
  return cpusOf(Number(quotaText.trim()), Number(periodText.trim()));
}

function cpusOf(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/** Where the kernel tells a process its cgroups: `<id>:<controllers>:<path>` per line. */
export const SELF_CGROUP = '/proc/self/cgroup';

/** This process's cgroup paths from /proc/self/cgroup's text: the v2 one (`0::/path`) and the v1 `cpu` controller's. */
export function ownCgroups(text: string): { v2?: string; v1Cpu?: string } {
  const own: { v2?: string; v1Cpu?: string } = {};
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!match) continue;
    const [, id, controllers, path] = match as unknown as [string, string, string, string];
    if (id === '0' && controllers === '') own.v2 = path;
    else if (controllers.split(',').includes('cpu')) own.v1Cpu = path;
  }
  return own;
}

/**
 * `path` and each of its parents up to `/`, deepest first. A path that leaves the namespace
 * (`/../..`: a process outside its cgroup namespace's root) has nothing below the mount: `/` alone.
 */
export function cgroupLevels(path: string | undefined): string[] {
  const parts = (path ?? '/').split('/').filter((p) => p !== '');
  if (parts.includes('..') || parts.includes('.')) return ['/'];
  const levels: string[] = [];
  for (let n = parts.length; n >= 0; n--) levels.push(`/${parts.slice(0, n).join('/')}`);
  return levels;
}

function readSelfCgroup(): string {
  try {
    return readFileSync(SELF_CGROUP, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The CPU limit of this process's cgroup under `root` (v2 first, then v1): the least one of its
 * own cgroup and its parents that the mount shows (a level not there, as above a container's
 * own cgroup when the mount is its own, is skipped); undefined when none is set.
 */
export function cgroupCpuLimit(root = CGROUP_ROOT, selfCgroup: string = readSelfCgroup()): number | undefined {
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(join(root, file), 'utf8');
    } catch {
      return undefined;
    }
  };
  const least = (limits: Array<number | undefined>) => limits.reduce<number | undefined>((min, l) => (l === undefined ? min : Math.min(min ?? l, l)), undefined);
  const own = ownCgroups(selfCgroup);
  const v2 = cgroupLevels(own.v2).map((dir) => read(join(dir, 'cpu.max')));
  // a cpu.max anywhere on the way: cgroup v2 decides (the root cgroup itself has none)
  if (v2.some((text) => text !== undefined)) return least(v2.map((text) => (text === undefined ? undefined : cpusOfCpuMax(text))));
  return least(
    cgroupLevels(own.v1Cpu).map((dir) => {
      const quota = read(join('cpu', dir, 'cpu.cfs_quota_us'));
      const period = read(join('cpu', dir, 'cpu.cfs_period_us'));
      return quota !== undefined && period !== undefined ? cpusOfCfs(quota, period) : undefined;
    }),
  );
}

/** `auto` from its inputs: at most MAX_WORKERS, the parallelism and the CPU limit, at least 1. */
export function autoWorkers(parallelism: number, cpuLimit: number | undefined): number {
  return Math.max(1, Math.min(MAX_WORKERS, parallelism, cpuLimit ?? Infinity));
}

/** The workers a `workers` setting starts; `cgroupRoot` and `selfCgroup` (/proc/self/cgroup's text) are where the limit is read (tests). */
export function workerCount(setting: Workers, cgroupRoot = CGROUP_ROOT, selfCgroup?: string): number {
  return setting === 'auto' ? autoWorkers(availableParallelism(), cgroupCpuLimit(cgroupRoot, selfCgroup)) : setting;
}
