// The demo runner and stop signals: a terminal's Ctrl-C (SIGINT to the whole foreground process
// group) while traffic runs ends the demo as asked, exit 0 with the full summary, and not as a
// crash of its children (they run in process groups of their own and are stopped in order);
// SIGTERM to the runner during start-up leaves none of the processes it started running.
// Ports: every demo port moved with DEMO_PORT_BASE, to a base whose ports are free (checked).

import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { httpGet, waitFor } from '../helpers/mesh.js';
import { demoPorts } from '../../src/demo/ports.js';
import { DEMO_RUNNER, freeDemoBase } from '../helpers/demo-base.js';

interface Runner {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The runner, as `make demo` starts it, in a process group of its own (a terminal's foreground group). */
function startRunner(cwd: string, base: number, seconds = ''): Runner {
  const child = spawn(process.execPath, [DEMO_RUNNER], { cwd, env: { ...process.env, DEMO_PORT_BASE: String(base), DEMO_SECONDS: seconds }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const out = { stdout: '', stderr: '' };
  child.stdout?.on('data', (c: Buffer) => (out.stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out.stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, out, exited };
}

/** The pids whose parent is `parent` (Linux /proc), with their command lines. */
async function childrenOf(parent: number): Promise<Array<{ pid: number; cmdline: string }>> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // the fields after the command name (which may hold spaces), "pid (comm) state ppid ..."
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) found.push({ pid: Number(entry), cmdline: (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ') });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Alive and not a zombie. */
async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** `promise`, or a failure saying `why` after `ms` (the timer cleared either way). */
async function within<T>(promise: Promise<T>, ms: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_r, fail) => (timer = setTimeout(() => fail(new Error(why())), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends a runner and anything it left, whatever the test did (teardown). */
function cleanUp(runner: Runner, pids: () => number[]): () => void {
  return () => {
    for (const pid of [runner.child.pid as number, ...pids()]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
}

/** Waits until the runner drives traffic (the orders sidecar has counted a direct call: the runner's loop). */
async function trafficRuns(runner: Runner, base: number): Promise<void> {
  const ports = demoPorts(base);
  await waitFor(
    async () => {
      if (runner.child.exitCode !== null) throw new Error(`the runner exited ${runner.child.exitCode}: ${runner.out.stderr}${runner.out.stdout.slice(-500)}`);
      return runner.out.stdout.includes('driving traffic') && /route="\/orders\/\{id\}",code="200"\} [1-9]/.test((await httpGet(ports.ordersAdmin, '/metrics').catch(() => ({ body: '' }))).body);
    },
    25_000,
    'traffic through the demo mesh',
  ).catch((err: Error) => {
    throw new Error(`${err.message}; runner stdout: ${runner.out.stdout.slice(-800)}; stderr: ${runner.out.stderr.slice(-800)}`);
  });
}

/** A runner driving traffic, cleaned up at `t`'s end: its children (the CA and two sidecars) with their command lines. */
async function runningDemo(t: Tap.Test): Promise<{ runner: Runner; children: Array<{ pid: number; cmdline: string }> }> {
  const base = await freeDemoBase();
  const runner = startRunner(t.testdir(), base);
  const found: { children: Array<{ pid: number; cmdline: string }> } = { children: [] };
  t.teardown(cleanUp(runner, () => found.children.map((c) => c.pid)));
  await trafficRuns(runner, base);
  found.children = await childrenOf(runner.child.pid as number);
  t.equal(found.children.length, 3, 'the CA and two sidecars run');
  return { runner, children: found.children };
}

t.test('Ctrl-C while traffic runs: exit 0, the full summary, every process stopped', async (t) => {
  const { runner, children } = await runningDemo(t);
  const seen = children.map((c) => c.pid);
  // what a terminal does on Ctrl-C: SIGINT to every process of the foreground group
  process.kill(-(runner.child.pid as number), 'SIGINT');
  const { code, signal } = await within(runner.exited, 20_000, () => `no exit 20 s after Ctrl-C; ${runner.out.stdout.slice(-500)}`);
  t.equal(code, 0, `exit 0 (signal ${signal}); stderr: ${runner.out.stderr}`);
  t.notMatch(runner.out.stderr, /demo failed|exited .* before the demo ended/, 'no child taken for crashed');
  t.match(runner.out.stdout, /GET frontend \/checkout\/\{id\}\s+\d+\s+200×\d+/, 'the traffic summary');
  t.match(runner.out.stdout, /per route, from the sidecars' own \/metrics/, 'the per-route table (the sidecars were still up for it)');
  t.match(runner.out.stdout, /the orders API as discovered/);
  t.match(runner.out.stdout, /stopped every process the demo started/);
  for (const pid of seen) t.notOk(await running(pid), `process ${pid} stopped`);
});

t.test('SIGTERM to the runner during start-up: none of its processes is left running', async (t) => {
  const base = await freeDemoBase();
  const runner = startRunner(t.testdir(), base);
  let seen: Array<{ pid: number; cmdline: string }> = [];
  t.teardown(cleanUp(runner, () => seen.map((c) => c.pid)));
  // the CA and both sidecars have been started (the sidecars are not ready yet, or only just)
  await waitFor(
    async () => {
      if (runner.child.exitCode !== null) throw new Error(`the runner exited ${runner.child.exitCode}: ${runner.out.stderr}`);
      seen = await childrenOf(runner.child.pid as number);
      return seen.filter((c) => c.cmdline.includes(' run --config ')).length === 2;
    },
    25_000,
    'the demo starting its sidecars',
  );
  t.ok(seen.some((c) => c.cmdline.includes(' ca serve ')), 'the CA runs');
  const traffic = runner.out.stdout.includes('driving traffic');
  process.kill(runner.child.pid as number, 'SIGTERM');
  const { code } = await within(runner.exited, 20_000, () => 'no exit 20 s after SIGTERM');
  t.equal(code, 0, `exit 0; stderr: ${runner.out.stderr}`);
  if (!traffic) t.match(runner.out.stdout, /SIGTERM: the demo stopped before the mesh was up/);
  t.match(runner.out.stdout, /stopped every process the demo started/);
  await waitFor(async () => (await Promise.all(seen.map((c) => running(c.pid)))).every((alive) => !alive), 5000, `processes ${seen.map((c) => c.pid).join(', ')} gone`);
  t.pass('the CA and both sidecars are gone');
});

// it hung: the traffic loop (no DEMO_SECONDS) kept calling closed ports every 20 ms
t.test('a sidecar dying while traffic runs: the demo fails at once, exit 1, every process stopped', async (t) => {
  const { runner, children: seen } = await runningDemo(t);
  const orders = seen.find((c) => c.cmdline.includes('orders.yaml'));
  t.ok(orders, 'the orders sidecar runs');
  process.kill(orders?.pid as number, 'SIGKILL');
  const { code } = await within(runner.exited, 20_000, () => `no exit 20 s after the orders sidecar died; ${runner.out.stderr.slice(-500)}`);
  t.equal(code, 1, 'exit 1');
  t.match(runner.out.stderr, /demo failed: the orders sidecar .* exited \(SIGKILL\)/, 'it says what failed');
  t.match(runner.out.stdout, /stopped every process the demo started/);
  for (const c of seen) t.notOk(await running(c.pid), `process ${c.pid} stopped`);
});

// the children have sessions of their own: a hang-up reached the runner alone, which ended,
// and the CA and both sidecars ran on holding the ports
t.test('SIGHUP (the terminal closed): every process stopped', async (t) => {
  const { runner, children } = await runningDemo(t);
  const seen = children.map((c) => c.pid);
  process.kill(-(runner.child.pid as number), 'SIGHUP');
  await within(runner.exited, 20_000, () => 'no exit 20 s after SIGHUP');
  await waitFor(async () => (await Promise.all(seen.map((pid) => running(pid)))).every((alive) => !alive), 15_000, `processes ${seen.join(', ')} gone`);
  t.pass('the CA and both sidecars are gone');
});

// piped into a reader that exits (`make demo | head`): the summary's write failed with EPIPE,
// which ended the runner unhandled, and the CA and both sidecars ran on holding the ports
t.test("the output's reader gone: the runner stops every process, no unhandled EPIPE", async (t) => {
  const base = await freeDemoBase();
  const runner = startRunner(t.testdir(), base, '4');
  let seen: Array<{ pid: number; cmdline: string }> = [];
  t.teardown(cleanUp(runner, () => seen.map((c) => c.pid)));
  await trafficRuns(runner, base);
  seen = await childrenOf(runner.child.pid as number);
  t.equal(seen.length, 3, 'the CA and two sidecars run');
  // the reader exits: the runner's next line (the summary, when the 4 s are over) has no one to read it
  runner.child.stdout?.destroy();
  await within(runner.exited, 30_000, () => `no exit 30 s after its reader went; stderr: ${runner.out.stderr.slice(-500)}`);
  t.notMatch(runner.out.stderr, /EPIPE|Unhandled|at .*\.js:\d+/, `no unhandled write error: ${runner.out.stderr.slice(-300)}`);
  await waitFor(async () => (await Promise.all(seen.map((c) => running(c.pid)))).every((alive) => !alive), 15_000, `processes ${seen.map((c) => c.pid).join(', ')} gone`);
  t.pass('the CA and both sidecars are gone');
});

// gone before the first line: `make demo | head -1` and the like. The one-shot commands wrote to
// the runner's stdout themselves and failed first (exit 1): 'demo failed: meshcar ca init ...'
t.test("the output's reader gone from the start: no failure, nothing left running", async (t) => {
  const base = await freeDemoBase();
  const cwd = t.testdir();
  const runner = startRunner(cwd, base, '4');
  runner.child.stdout?.destroy();
  t.teardown(cleanUp(runner, () => []));
  await within(runner.exited, 30_000, () => `no exit 30 s after its reader went; stderr: ${runner.out.stderr.slice(-500)}`);
  t.notMatch(runner.out.stderr, /demo failed|EPIPE|at .*\.js:\d+/, `no failure: ${runner.out.stderr.slice(-300)}`);
  t.same(await processesIn(cwd), [], 'no process left running in its folder');
});

/** The pids of live processes whose working directory is `dir` (what the demo starts runs there). */
async function processesIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if (cwd === dir && (await running(Number(entry)))) found.push(Number(entry));
  }
  return found;
}
