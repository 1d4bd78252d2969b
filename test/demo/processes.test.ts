// The demo shows its children's warning log lines whole: a JSON line that reaches the runner
// in two pipe reads is still one line (matching chunk by chunk printed a torn half and lost
// the rest). A real child process writes the line in two parts through a real pipe.

import t from 'tap';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { showWarnings } from '../../src/demo/processes.js';

// writes half of a warn line, says so on stderr, and writes the rest when told on stdin
const CHILD = `
const line = JSON.stringify({ level: 40, msg: 'a warning ' + 'x'.repeat(200), component: 'identity' });
process.stdout.write(line.slice(0, 30), () => process.stderr.write('half\\n'));
process.stdin.once('data', () => process.stdout.write(line.slice(30) + '\\n' + JSON.stringify({ level: 30, msg: 'info' }) + '\\n', () => process.exit(0)));
`;

t.test('a warning line split across pipe reads is shown once, whole', async (t) => {
  const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let shown = '';
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      shown += chunk.toString();
      done();
    },
  });
  showWarnings(child.stdout, 'orders-sidecar', out);
  // the first part is in the pipe (and read on its own) before the rest is written
  await new Promise<void>((resolve) => child.stderr.once('data', () => resolve()));
  child.stdin.write('go\n');
  await new Promise((resolve) => child.once('close', resolve)); // exited, and its pipes read to the end
  const expected = JSON.stringify({ level: 40, msg: `a warning ${'x'.repeat(200)}`, component: 'identity' });
  t.equal(shown, `[orders-sidecar] ${expected}\n`, 'one whole line, prefixed; the info line is not shown');
});
