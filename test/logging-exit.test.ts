// The process's log output at exit when stdout is not read: the exit hook's bounded flush gives
// up and drops what is buffered; a line logged after that (by a later 'exit' listener) is a
// counted drop, never a "SonicBoom destroyed" thrown out of the listener (a non-zero exit).

import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const DIST = new URL('../dist/', import.meta.url);

t.test('a line logged after the exit flush gave up is dropped and counted, the exit code stays 0', async (t) => {
  const script = join(t.testdir(), 'late-line.mjs');
  await writeFile(
    script,
    `import { writeSync } from 'node:fs';
import { createLogger } from ${JSON.stringify(new URL('logging.js', DIST).href)};
import { logLinesDropped } from ${JSON.stringify(new URL('log-output.js', DIST).href)};
const log = createLogger('info');
// ~3 MB: fits the 4 MiB buffer, far more than an unread pipe takes
const filler = 'x'.repeat(1000);
for (let i = 0; i < 3000; i++) log.info({ filler }, 'filler');
// registered after the logger's own exit hook, so it runs after that hook gave up
process.on('exit', () => {
  const before = logLinesDropped();
  log.info('logged after the exit flush');
  writeSync(2, 'dropped after exit: ' + (logLinesDropped() - before) + '\\n');
});
process.exit(0);
`,
  );
  const started = Date.now();
  // stdout is a pipe nobody reads: the exit hook's flush cannot finish
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pause();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exit within 10 s; stderr: ${stderr}`)), 10_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  child.stdout.destroy();
  t.equal(code, 0, `exit 0 (stderr: ${stderr.slice(0, 500)})`);
  t.notMatch(stderr, /SonicBoom destroyed/, 'nothing thrown');
  t.match(stderr, /dropped after exit: 1\b/, 'the late line counted as dropped');
  t.ok(Date.now() - started < 8000, `exited within the flush bound (${Date.now() - started} ms)`);
});
