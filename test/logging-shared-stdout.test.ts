// Processes writing their log lines to one stdout pipe whose reader lags (the workers of
// `workers: 2` and their primary share the sidecar's stdout; so do a sidecar and an app started
// together in one container). A pipe takes a write of up to PIPE_BUF (4096 bytes) whole or not
// at all; a larger one is taken in part when the pipe is nearly full, and the other process's
// write then lands in the gap: a hunt saw lines spliced into each other under `workers: 2`
// with the access log on (`{"level":30,"time":"2026-12-06T{"level":30,...`). src/logging.ts
// writes whole lines, at most PIPE_BUF per write. Here: three real writers through
// createLogger, ~300 KB each, into one pipe read by a separate process a page at a time with
// pauses between; every line that comes out must be one whole JSON object, and none missing.

import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const DIST = new URL('../dist/', import.meta.url).pathname;
const LINES = 300;

// reads its stdin a page (4 KB) at a time, 20 ms apart (200 KB/s), into the file it is given:
// the pipe is never empty when a writer tries again (sonic-boom waits 100 ms after EAGAIN),
// so a write of more than the pages free is taken in part (a reader that emptied the pipe
// between tries let every 16 KB write in whole or not at all)
const SLOW_READER = `
import os, sys, time
out = open(sys.argv[1], 'wb')
while True:
    b = os.read(0, 4096)
    if not b:
        break
    out.write(b)
    time.sleep(0.02)
out.close()
`;

// LINES lines of 450 to 1650 bytes through the sidecar's own logger, then its bounded close.
// Lines of one length made every write the same number of pipe pages, so a write found room
// for all of itself or none: access lines vary, and so do these
const WRITER = `
const { createLogger } = await import(${JSON.stringify(join(DIST, 'logging.js'))});
const { closeLogs, logLinesDropped } = await import(${JSON.stringify(join(DIST, 'log-output.js'))});
const log = createLogger('info');
for (let i = 0; i < ${LINES}; i++) {
  log.info({ writer: process.argv[1], i, pad: 'x'.repeat(300 + ((i * 389) % 1200)) }, 'a line');
  if (i % 100 === 99) await new Promise((r) => setImmediate(r));
}
const closed = await closeLogs(Date.now() + 30000);
process.stderr.write('dropped ' + logLinesDropped() + ' closed ' + closed + '\\n');
`;

// the writers in a subshell whose stdout is a pipe (a shell's |, a FIFO as a container runtime
// gives; Node's own stdio pipes are socket pairs, which never showed the split)
const PIPELINE = `
( node --input-type=module -e "$WRITER" a & pa=$!
  node --input-type=module -e "$WRITER" b & pb=$!
  node --input-type=module -e "$WRITER" c & pc=$!
  wait $pa; ca=$?; wait $pb; cb=$?; wait $pc; cc=$?; echo "codes $ca $cb $cc" >&2 ) | python3 -c "$SLOW_READER" "$OUT"
`;

t.test('three processes, one stdout pipe read slowly: every line arrives whole', async (t) => {
  const file = join(t.testdir(), 'stdout.log');
  const shell = spawn('bash', ['-c', PIPELINE], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WRITER, SLOW_READER, OUT: file } });
  t.teardown(() => void shell.kill('SIGKILL'));
  const stderr: string[] = [];
  shell.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const [code] = (await once(shell, 'exit')) as [number];
  const said = stderr.join('');
  t.equal(code, 0, `the pipeline exits 0 (${said.trim()})`);
  t.match(said, /codes 0 0 0/, 'every writer exits 0');
  t.same(said.match(/dropped \d+/g), ['dropped 0', 'dropped 0', 'dropped 0'], 'no line dropped by the bounded buffer');
  const text = await readFile(file, 'utf8');
  const lines = text.split('\n').filter((line) => line !== '');
  const broken = lines.filter((line) => {
    try {
      return typeof (JSON.parse(line) as { i?: unknown }).i !== 'number';
    } catch {
      return true;
    }
  });
  t.same(broken.slice(0, 2).map((line) => line.slice(0, 120)), [], "every line is one whole JSON object (none spliced with another writer's)");
  t.equal(lines.length, 3 * LINES, 'every line of every writer');
});
