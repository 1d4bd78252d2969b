// How many workers `workers: auto` starts (src/workers/worker-count.ts): at most 64
// (MAX_WORKERS, as a number is), at most the cores Node sees, and at most the container's CPU
// limit read from real cgroup files (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us)
// written to a temp dir standing for /sys/fs/cgroup. It was availableParallelism() as is:
// 96 on a 96-core node, whatever the pod's limit (Node 20's libuv does not read the quota).

import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { MAX_WORKERS } from '../../src/config/sidecar-config.js';
import { autoWorkers, cgroupCpuLimit, cpusOfCfs, cpusOfCpuMax, workerCount } from '../../src/workers/worker-count.js';

t.test('auto is at most 64, the parallelism and the CPU limit, at least 1', async (t) => {
  t.equal(MAX_WORKERS, 64);
  t.equal(autoWorkers(96, undefined), 64, '96 cores, no limit: 64');
  t.equal(autoWorkers(96, cpusOfCpuMax('150000 100000\n')), 2, 'cpu.max "150000 100000" (1.5 CPUs): 2');
  t.equal(autoWorkers(8, cpusOfCpuMax('max 100000\n')), 8, 'cpu.max "max 100000": the parallelism');
  t.equal(autoWorkers(4, cpusOfCpuMax('1600000 100000\n')), 4, 'a limit above the cores: the cores');
  t.equal(autoWorkers(8, cpusOfCpuMax('10000 100000\n')), 1, '0.1 CPU: one');
  t.equal(autoWorkers(0, undefined), 1, 'never 0');
});

t.test('cgroup files are parsed as the kernel writes them', async (t) => {
  t.equal(cpusOfCpuMax('200000 100000\n'), 2);
  t.equal(cpusOfCpuMax('250000 100000\n'), 3, 'rounded up');
  t.equal(cpusOfCpuMax('max 100000\n'), undefined);
  t.equal(cpusOfCpuMax('max\n'), undefined);
  t.equal(cpusOfCpuMax('\n'), undefined, 'empty: no limit known');
  t.equal(cpusOfCpuMax('garbage here\n'), undefined);
  t.equal(cpusOfCfs('-1\n', '100000\n'), undefined, 'v1 quota -1: unlimited');
  t.equal(cpusOfCfs('300000\n', '100000\n'), 3);
  t.equal(cpusOfCfs('50000\n', '100000\n'), 1);
});

t.test('the limit is read from the cgroup mount (v2 first, then v1)', async (t) => {
  const v2 = t.testdir({ 'cpu.max': '150000 100000\n' });
  t.equal(cgroupCpuLimit(v2), 2, 'v2 cpu.max');
  t.equal(workerCount('auto', v2), Math.min(2, availableParallelism()), 'auto under a 1.5-CPU limit');
  t.equal(workerCount(5, v2), 5, 'a number is taken as written');
  const unlimited = join(t.testdirName, 'unlimited');
  mkdirSync(unlimited);
  writeFileSync(join(unlimited, 'cpu.max'), 'max 100000\n');
  t.equal(cgroupCpuLimit(unlimited), undefined);
  t.equal(workerCount('auto', unlimited), Math.min(64, availableParallelism()), 'no limit: the cores (at most 64)');
  const v1 = join(t.testdirName, 'v1');
  mkdirSync(join(v1, 'cpu'), { recursive: true });
  writeFileSync(join(v1, 'cpu', 'cpu.cfs_quota_us'), '100000\n');
  writeFileSync(join(v1, 'cpu', 'cpu.cfs_period_us'), '100000\n');
  t.equal(cgroupCpuLimit(v1), 1, 'v1 quota / period');
  t.equal(workerCount('auto', v1), 1);
  t.equal(cgroupCpuLimit(join(t.testdirName, 'absent')), undefined, 'no cgroup files: no limit');
});
