// How many workers `workers: auto` starts (src/workers/worker-count.ts): at most 64
// (MAX_WORKERS, as a number is), at most the cores Node sees, and at most the container's CPU
// limit read from real cgroup files (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us)
// written to a temp dir standing for /sys/fs/cgroup. It was availableParallelism() as is:
// 96 on a 96-core node, whatever the pod's limit (Node 20's libuv does not read the quota).
// The limit is found in the process's own cgroup and its parents (from /proc/self/cgroup's
// text), not only at the mount's top: a systemd unit's CPUQuota= (seen for real, cgroup v1, a
// shell moved into a child cpu cgroup with a 1-CPU quota on a 2-core machine: auto was 2).

import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { MAX_WORKERS } from '../../src/config/sidecar-config.js';
import { autoWorkers, cgroupCpuLimit, cgroupLevels, cpusOfCfs, cpusOfCpuMax, ownCgroups, workerCount } from '../../src/workers/worker-count.js';

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

t.test("the limit of the process's own cgroup and its parents, the least of them", async (t) => {
  t.same(ownCgroups('0::/system.slice/meshcar.service\n'), { v2: '/system.slice/meshcar.service' }, 'v2 line');
  t.same(ownCgroups('12:pids:/x\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n'), { v1Cpu: '/docker/abc', v2: '/' }, 'v1 cpu controller among others');
  t.same(cgroupLevels('/a/b'), ['/a/b', '/a', '/']);
  t.same(cgroupLevels('/'), ['/']);
  t.same(cgroupLevels('/../..'), ['/'], 'outside the namespace: the mount only');
  // cgroup v2 on a host (no namespace): the root cgroup has no cpu.max, the unit's has the quota
  const unit = t.testdir({ 'system.slice': { 'meshcar.service': { 'cpu.max': '100000 100000\n' }, 'cpu.max': 'max 100000\n' } });
  t.equal(cgroupCpuLimit(unit, '0::/system.slice/meshcar.service\n'), 1, "a systemd unit's CPUQuota=100%");
  t.equal(workerCount('auto', unit, '0::/system.slice/meshcar.service\n'), 1, 'auto under it: 1');
  t.equal(cgroupCpuLimit(unit, '0::/system.slice/other.service\n'), undefined, 'another unit, no quota of its own or above: none');
  // a parent's limit holds over a child's looser one (a pod's over its container's)
  const pod = join(t.testdirName, 'pod');
  mkdirSync(join(pod, 'kubepods', 'pod1', 'ctr'), { recursive: true });
  writeFileSync(join(pod, 'kubepods', 'pod1', 'cpu.max'), '200000 100000\n');
  writeFileSync(join(pod, 'kubepods', 'pod1', 'ctr', 'cpu.max'), '400000 100000\n');
  t.equal(cgroupCpuLimit(pod, '0::/kubepods/pod1/ctr\n'), 2, 'the parent 2, the child 4: 2');
  // cgroup v1 without a namespace: the cpu controller's own cgroup
  const v1 = join(t.testdirName, 'v1-child');
  mkdirSync(join(v1, 'cpu', 'probe'), { recursive: true });
  writeFileSync(join(v1, 'cpu', 'cpu.cfs_quota_us'), '-1\n');
  writeFileSync(join(v1, 'cpu', 'cpu.cfs_period_us'), '100000\n');
  writeFileSync(join(v1, 'cpu', 'probe', 'cpu.cfs_quota_us'), '100000\n');
  writeFileSync(join(v1, 'cpu', 'probe', 'cpu.cfs_period_us'), '100000\n');
  t.equal(cgroupCpuLimit(v1, '3:cpuset:/\n2:cpuacct:/\n1:cpu:/probe\n'), 1, 'v1, a child cgroup with a 1-CPU quota');
  // Docker on v1 without a cgroup namespace: its own cgroup is mounted as the top, the path names the host's
  const docker = join(t.testdirName, 'docker');
  mkdirSync(join(docker, 'cpu'), { recursive: true });
  writeFileSync(join(docker, 'cpu', 'cpu.cfs_quota_us'), '150000\n');
  writeFileSync(join(docker, 'cpu', 'cpu.cfs_period_us'), '100000\n');
  t.equal(cgroupCpuLimit(docker, '4:cpu,cpuacct:/docker/abc\n'), 2, 'a path not under the mount: the top');
});
