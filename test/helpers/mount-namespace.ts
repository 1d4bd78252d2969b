// Test helper: whether a private mount namespace with a scratch tmpfs can be made here (Linux,
// root, unshare with CAP_SYS_ADMIN, as CI has): the tests that need a kernel file system of
// their own (a scratch /dev, a small full disk) run their commands inside one; and whether a
// new PID namespace can be made (a process that sees other pids as a container does).

import { spawnSync } from 'node:child_process';

/** Why a mount namespace with a tmpfs of its own cannot be made here, or undefined when it can. */
export function mountNamespaceUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `mount namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'a mount namespace with a scratch tmpfs needs root (run the tests as root, as CI does)';
  const probe = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs meshcar-probe /mnt'], { timeout: 5_000 });
  if (probe.error) return `unshare is unavailable: ${probe.error.message}`;
  return probe.status === 0 ? undefined : `unshare --mount failed (CAP_SYS_ADMIN is needed, as CI has): ${String(probe.stderr).trim()}`;
}

/** Why a process cannot be run as PID 1 of a namespace of its own here, or undefined when it can. */
export function pidNamespaceUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `PID namespaces need Linux (this is ${process.platform})`;
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', '/bin/sh', '-c', 'test $$ = 1'], { timeout: 5_000 });
  if (probe.error) return `unshare is unavailable: ${probe.error.message}`;
  return probe.status === 0 ? undefined : `unshare --pid failed (root is needed, as CI runs): ${String(probe.stderr).trim()}`;
}
