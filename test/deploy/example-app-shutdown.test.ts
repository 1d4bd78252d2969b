// The example caller's app (frontend's `app` container, a shell loop calling orders through its
// meshcar) stops at SIGTERM when it runs as PID 1, as it does in its container. PID 1 has no
// default action for SIGTERM: without a trap the loop kept calling until the kubelet's SIGKILL
// at the end of the grace period, while its meshcar, quiet for a second, had already drained
// and gone, so every pod deletion logged refused calls and took the whole grace period.
// The script is taken from the rendered base and run in a new PID namespace (unshare, needs
// root, as the network-namespace tests do) with a stand-in wget that records each call.

import t from 'tap';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { podSpec, renderKustomization } from '../helpers/kustomize.js';
import { pidNamespaceUnavailable } from '../helpers/mount-namespace.js';

const BASE = new URL('../../config/kubernetes/base/', import.meta.url).pathname;

/** Why a shell cannot be run as PID 1 here and found by the test, or undefined when it can. */
function shellAsPid1Unavailable(): string | undefined {
  // how the test finds the shell's host pid (a kernel without CONFIG_PROC_CHILDREN has no such file)
  if (process.platform === 'linux' && !existsSync(`/proc/${process.pid}/task/${process.pid}/children`)) return 'this kernel does not list a process\'s children in /proc';
  return pidNamespaceUnavailable();
}

/** The host pid of the process `unshare --fork` started (PID 1 of the new namespace). */
function childOf(pid: number): number | undefined {
  const text = (() => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    } catch {
      return '';
    }
  })();
  const first = Number(text.trim().split(/\s+/)[0]);
  return Number.isInteger(first) && first > 0 ? first : undefined;
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 1_000 && !check(); i++) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const unavailable = shellAsPid1Unavailable();

t.test('frontend\'s app, PID 1 of its namespace, exits at SIGTERM within a second', { skip: unavailable ?? false }, async (t) => {
  const frontend = renderKustomization(BASE).find((o) => o.kind === 'Deployment' && o.metadata.name === 'frontend');
  const app = (podSpec(frontend as never)?.containers as Array<{ name: string; command?: string[]; args?: string[] }>).find((c) => c.name === 'app');
  t.same(app?.command, ['/bin/sh', '-c'], 'a shell script');
  const script = app?.args?.[0] as string;

  const dir = mkdtempSync(join(tmpdir(), 'meshcar-app-shutdown-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const calls = join(dir, 'calls');
  writeFileSync(calls, '');
  // busybox's wget in the pod; here a stand-in that answers as orders would
  writeFileSync(join(dir, 'wget'), `#!/bin/sh\necho call >> ${calls}\necho orders\n`);
  chmodSync(join(dir, 'wget'), 0o755);

  const unshare = spawn('unshare', ['--pid', '--fork', '/bin/sh', '-c', script], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => unshare.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  t.teardown(() => {
    const pid1 = unshare.pid === undefined ? undefined : childOf(unshare.pid);
    if (pid1 !== undefined) process.kill(pid1, 'SIGKILL');
    unshare.kill('SIGKILL');
  });

  // the loop has made its first call and sleeps: the usual state when the pod is deleted
  await until('the first call', () => readFileSync(calls, 'utf8').length > 0, 5_000);
  const pid1 = childOf(unshare.pid as number);
  t.ok(pid1, 'the shell, PID 1 inside');
  const sent = Date.now();
  process.kill(pid1 as number, 'SIGTERM');
  await until('the app exits', () => gone, 3_000).catch(() => undefined);
  t.ok(gone, `exited ${gone ? `${Date.now() - sent} ms` : 'not within 3 s'} after SIGTERM (its meshcar leaves 1 s after the app's last call; the kubelet kills at the grace period's end)`);
  t.ok(Date.now() - sent < 1_500, 'at once, not after its sleep');
  t.equal(readFileSync(calls, 'utf8').split('\n').filter(Boolean).length, 1, 'no call after SIGTERM');
});
