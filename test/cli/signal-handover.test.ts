// The hand-over of SIGTERM/SIGINT from start-up (StartupSignals) to the drain (untilSignal) as
// `meshcar run` and `meshcar ca serve` make it once started. Node closes a signal's watcher when
// the signal's last listener is removed, and a signal the kernel delivered while JavaScript was
// busy (finishing start-up), not yet read off libuv's queue, went with it: the hand-over removed
// start-up's listener before the drain's was on, and a SIGTERM that came as the sidecar became
// ready was lost (3 of 40 starts signalled 0-4 ms after `outbound listening` ran on until
// SIGKILL). Run in a child process of its own: the test runner's own signal listeners would keep
// the watcher open.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = (path: string) => new URL(path, import.meta.url).href;

const script = `
import { StartupSignals } from ${JSON.stringify(here('../../src/cli/startup-signals.ts'))};
import { untilSignal } from ${JSON.stringify(here('../../src/cli/command.ts'))};
const signals = new StartupSignals();
// start-up's last moments: the signal comes while JavaScript is busy, so it waits, read by the
// kernel's handler but not yet by the event loop, when the hand-over runs
process.kill(process.pid, process.argv[2]);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
const lost = setTimeout(() => {
  console.log('no stop 5 s after the signal');
  process.exit(3);
}, 5000);
const status = await untilSignal(async () => console.log('drained'), () => console.log('repeat'), () => signals.handOverStop());
clearTimeout(lost);
console.log('exit ' + status);
`;

t.test('a SIGTERM or SIGINT that comes as start-up ends reaches the drain', async (t) => {
  const file = join(t.testdir(), 'handover.mjs');
  await writeFile(file, script);
  for (const signal of ['SIGTERM', 'SIGINT']) {
    const { stdout } = await run(process.execPath, ['--import', here('../helpers/ts-loader.mjs'), file, signal], { timeout: 20_000 }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? String(err) }));
    t.equal(stdout.trim(), 'drained\nexit 0', `${signal}: the drain ran once and the command ended 0 (${JSON.stringify(stdout.trim())})`);
  }
});

const twice = `
import { StartupSignals } from ${JSON.stringify(here('../../src/cli/startup-signals.ts'))};
import { untilSignal } from ${JSON.stringify(here('../../src/cli/command.ts'))};
const signals = new StartupSignals();
const started = Date.now();
// as a server's listener would: signal watchers alone do not keep Node running
const keep = setInterval(() => undefined, 1000);
const status = untilSignal(async () => {
  console.log('draining');
  await new Promise((resolve) => setTimeout(resolve, 12000));
}, undefined, () => signals.handOverStop());
// two signals while JavaScript is busy: both wait in libuv's queue for the drain's listener
process.kill(process.pid, 'SIGTERM');
process.kill(process.pid, 'SIGTERM');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
const code = await status;
clearInterval(keep);
console.log('drained after ' + (Date.now() - started) + ' ms, exit ' + code);
`;

t.test("without a repeat listener (ca serve), a second signal queued behind the first ends the process by the signal's default action", async (t) => {
  // the first signal's handler removed its listeners, the last ones: the watcher closed with
  // the second still queued, and the drain ran its whole length
  const file = join(t.testdir(), 'twice.mjs');
  await writeFile(file, twice);
  const started = Date.now();
  const ended = await run(process.execPath, ['--import', here('../helpers/ts-loader.mjs'), file], { timeout: 30_000 }).then(
    ({ stdout }) => ({ stdout, signal: null as string | null, code: 0 as number | null }),
    (err: { stdout?: string; signal?: string | null; code?: number | null }) => ({ stdout: err.stdout ?? '', signal: err.signal ?? null, code: err.code ?? null }),
  );
  t.ok(ended.signal === 'SIGTERM' || ended.code === 143, `ended by SIGTERM (signal ${String(ended.signal)}, code ${String(ended.code)}, output ${JSON.stringify(ended.stdout.trim())})`);
  // the clock starts before the child's node and TypeScript loader (1.5-3 s on a busy host): the
  // drain is 12 s long, so an end well before it is the signal's, not the drain's
  t.ok(Date.now() - started < 8_000, 'before the drain would have ended');
});
