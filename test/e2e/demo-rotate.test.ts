// `make rotate-demo` end to end, in a fresh folder: the demo mesh comes up, the CA root rotates in
// its three steps while traffic runs, each step prints the roots each sidecar trusts (two after
// add, the new one active after activate, only the new one after retire), no request fails, and
// every process it started is stopped. A second one started in the same folder meanwhile is
// refused before it touches anything (it removed the running one's CA and folders, which then
// failed); one whose sidecar dies fails at once, exit 1 (it hung, its traffic loop calling
// closed ports for ever). Its ports are fixed (19xxx): the runs here take turns.

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../helpers/mesh.js';

const RUNNER = fileURLToPath(new URL('../../dist/demo/rotate-demo.js', import.meta.url));

interface Run {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exited: Promise<number>;
}

function startRun(cwd: string): Run {
  const child = spawn(process.execPath, [RUNNER], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (c: Buffer) => (out.stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out.stderr += c.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128))));
  return { child, out, exited };
}

/** `promise`, or `fallback` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([promise, new Promise<T>((resolve) => setTimeout(resolve, ms, fallback).unref())]);
}

/** The children of `parent` (Linux /proc) whose command line holds `part`. */
async function childPids(parent: number, part: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) continue;
    if ((await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').includes(part)) found.push(Number(entry));
  }
  return found;
}

/** The processes (Linux /proc) whose working folder is `dir`, with their command lines. */
async function processesIn(dir: string): Promise<string[]> {
  const real = await realpath(dir);
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || (await readlink(`/proc/${entry}/cwd`).catch(() => '')) !== real) continue;
    found.push(`${entry}: ${(await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim()}`);
  }
  return found;
}

/**
 * A test's folder for a demo run. At the test's end every process still in it (the runner, and
 * the sidecars and CA it starts in sessions of their own: a failed test leaves them) gets SIGKILL
 * and is waited for before tap removes the folder: a teardown set before the folder is made runs
 * before its removal (one set after runs after it, too late: the removal met ENOTEMPTY).
 */
function demoDir(t: Tap.Test): string {
  let dir = '';
  // the test's first teardown: tap wraps its end there, so this one runs before the folder goes
  t.teardown(() => killAllIn(dir));
  dir = t.testdir();
  return dir;
}

/** SIGKILL to every process working in `dir`, until none is left (about 5 s at most). */
async function killAllIn(dir: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const left = (await processesIn(dir).catch(() => [])).map((line) => Number(line.split(':')[0]));
    if (left.length === 0) return;
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

t.test('the rotate demo rotates the root under traffic with zero failed requests; a second one beside it is refused', async (t) => {
  const cwd = demoDir(t);
  const first = startRun(cwd);
  await waitFor(async () => first.out.stdout.includes('before: one root') || first.child.exitCode !== null, 60_000, 'the first run up, its traffic running');
  const second = startRun(cwd);
  t.equal(await within(second.exited, 20_000, -1), 1, 'the second run ends, exit 1');
  t.match(second.out.stderr, /rotate-demo failed: another demo is running here/, `it says why: ${second.out.stderr}`);
  const code = await within(first.exited, 90_000, -1);
  const result = { code, stdout: first.out.stdout, stderr: first.out.stderr };
  t.equal(result.code, 0, result.stderr || result.stdout);
  const out = result.stdout;
  const section = (from: string, to: string) => out.slice(out.indexOf(from), to ? out.indexOf(to) : undefined);
  const add = section('$ meshcar ca root add', '$ meshcar ca root activate');
  const activate = section('$ meshcar ca root activate', '$ meshcar ca root retire');
  const retire = section('$ meshcar ca root retire', 'root rotation done');
  for (const sidecar of ['orders', 'frontend']) {
    t.match(add, new RegExp(`${sidecar} trusts [0-9a-f]{8} \\(active\\), [0-9a-f]{8} \\(pending\\) \\[meshcar_identity_bundle_roots 2\\]`), `after add, ${sidecar} trusts both roots`);
    t.match(activate, new RegExp(`${sidecar} trusts [0-9a-f]{8} \\(retiring\\), [0-9a-f]{8} \\(active\\) \\[meshcar_identity_bundle_roots 2\\]`), `after activate, ${sidecar} still trusts both`);
    t.match(retire, new RegExp(`${sidecar} trusts [0-9a-f]{8} \\(active\\) \\[meshcar_identity_bundle_roots 1\\]`), `after retire, ${sidecar} trusts only the new root`);
  }
  t.match(out, /both sidecars renewed on the new root alone \(after [\d.]+ s\)/, 'traffic runs on until both renewed on the single new root');
  t.equal((out.match(/failed requests so far: 0 of \d+/g) ?? []).length, 5, 'zero failures before and after every step, and after the renewals on the new root alone');
  t.match(out, /root rotation done: \d+ requests through the mesh, 0 failed/);
  t.match(out, /stopped every process the demo started/);
  // the sidecars are stopped before the CA: none is left to find its CA gone
  t.notMatch(out.slice(out.indexOf('root rotation done')), /could not fetch the CA's trust bundle|\[(orders|frontend)-sidecar\]/, 'no sidecar warning after done');
});

t.test('a sidecar dying mid-rotation: the rotate demo fails at once, exit 1', async (t) => {
  const cwd = demoDir(t);
  const run = startRun(cwd);
  await waitFor(async () => run.out.stdout.includes('before: one root') || run.child.exitCode !== null, 60_000, 'the run up, its traffic running');
  const [orders] = await childPids(run.child.pid as number, 'orders.yaml');
  t.ok(orders, 'the orders sidecar runs');
  process.kill(orders as number, 'SIGKILL');
  t.equal(await within(run.exited, 20_000, -1), 1, 'the runner ends, exit 1');
  t.match(run.out.stderr, /rotate-demo failed: the orders sidecar .* exited/, `it says what failed: ${run.out.stderr.slice(-400)}`);
  t.match(run.out.stdout, /stopped every process the demo started/);
});

// the runner said "failed" at once but stayed up to 30 s more: the wait for a step to reach
// both sidecars polled on after the stop (a review: 29.9 s after the kill)
t.test('a sidecar dying while a step waits to reach both sidecars: the runner ends within seconds', async (t) => {
  const cwd = demoDir(t);
  const run = startRun(cwd);
  await waitFor(async () => existsSync(join(cwd, 'certs/rotate-demo/ca/root-pending.crt')) || run.child.exitCode !== null, 60_000, '"root add" run, its wait for the sidecars under way');
  const [orders] = await childPids(run.child.pid as number, 'orders.yaml');
  t.ok(orders, 'the orders sidecar runs');
  process.kill(orders as number, 'SIGKILL');
  const killed = performance.now();
  t.equal(await within(run.exited, 15_000, -1), 1, 'the runner ends, exit 1');
  t.ok(performance.now() - killed < 10_000, `within 10 s of the kill (${Math.round(performance.now() - killed)} ms)`);
  t.match(run.out.stderr, /rotate-demo failed: the orders sidecar .* exited/, `it says what failed: ${run.out.stderr.slice(-400)}`);
});

// Ctrl-C mid-rotation exited 0 and never said what had been counted
t.test('Ctrl-C mid-rotation: the counts so far, every process stopped, exit 130', async (t) => {
  const cwd = demoDir(t);
  const run = startRun(cwd);
  await waitFor(async () => run.out.stdout.includes('before: one root') || run.child.exitCode !== null, 60_000, 'the run up, its traffic running');
  // the signal while a one-shot CA command runs (the rotation's first `ca status`): it, and the
  // `ca root add` the rotation went on to start, outlived the runner, writing in the CA's folder
  await waitFor(async () => (await childPids(run.child.pid as number, ' ca status')).length > 0 || run.child.exitCode !== null, 30_000, 'a ca status of the rotation running');
  const [status] = await childPids(run.child.pid as number, ' ca status');
  // what runs once the handler has begun the stop (it says so, then stops at once), read as soon
  // as it says so: a command started before the signal is let finish; listed before the signal,
  // one started during the scan was missed
  const stopBegun = new Promise<void>((resolve) => {
    const onData = () => {
      if (!run.out.stdout.includes('SIGINT: stopping the rotate-demo')) return;
      run.child.stdout?.off('data', onData);
      resolve();
    };
    run.child.stdout?.on('data', onData);
  });
  run.child.kill('SIGINT');
  await within(stopBegun, 10_000, undefined);
  const before = new Set(await childPids(run.child.pid as number, ' ca '));
  // with the fault, the ca status ending before this scan let the next command in unseen
  if (status !== undefined && !before.has(status)) t.comment(`the ca status (${status}) had ended before the scan: this run could not tell`);
  const startedAfter = new Set<number>();
  const watching = (async () => {
    while (run.child.exitCode === null && run.child.signalCode === null) {
      for (const pid of await childPids(run.child.pid as number, ' ca ')) if (!before.has(pid)) startedAfter.add(pid);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  t.equal(await within(run.exited, 20_000, -1), 130, 'exit 130, as a shell reports SIGINT');
  await watching;
  t.same([...startedAfter], [], 'no meshcar command started once the signal came');
  t.same(await processesIn(cwd), [], 'no process left running in the demo\'s folder once the runner has exited');
  t.match(run.out.stdout, /SIGINT: stopping the rotate-demo\ninterrupted: \d+ requests through the mesh, 0 failed/, 'what was counted');
  t.match(run.out.stdout, /stopped every process the demo started/);
  t.notMatch(run.out.stderr, /rotate-demo failed/, 'a stop is not reported as a failure');
});
