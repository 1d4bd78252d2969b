// How many workers `workers: auto` starts: the cores this process may use, which is the least of
// the cores Node sees (os.availableParallelism(): the CPU affinity), the container's CPU limit
// (the cgroup CPU quota: Node 20's libuv does not read it, so a pod limited to 2 CPUs on a
// 96-core node would fork 96 workers that share 2 CPUs) and MAX_WORKERS, and at least 1.
// The cgroup files are parsed by pure functions taking their text; the reading takes the
// mount point, so a test hands it a directory of real file contents.

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

/** The CPU limit of this process's cgroup under `root` (v2 first, then v1); undefined when none is set. */
export function cgroupCpuLimit(root = CGROUP_ROOT): number | undefined {
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(join(root, file), 'utf8');
    } catch {
      return undefined;
    }
  };
  const cpuMax = read('cpu.max');
  if (cpuMax !== undefined) return cpusOfCpuMax(cpuMax);
  const quota = read('cpu/cpu.cfs_quota_us');
  const period = read('cpu/cpu.cfs_period_us');
  return quota !== undefined && period !== undefined ? cpusOfCfs(quota, period) : undefined;
}

/** `auto` from its inputs: at most MAX_WORKERS, the parallelism and the CPU limit, at least 1. */
export function autoWorkers(parallelism: number, cpuLimit: number | undefined): number {
  return Math.max(1, Math.min(MAX_WORKERS, parallelism, cpuLimit ?? Infinity));
}

/** The workers a `workers` setting starts; `cgroupRoot` is where the cgroup files are read (tests). */
export function workerCount(setting: Workers, cgroupRoot = CGROUP_ROOT): number {
  return setting === 'auto' ? autoWorkers(availableParallelism(), cgroupCpuLimit(cgroupRoot)) : setting;
}
