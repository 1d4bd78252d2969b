// meshcar turns V8's allocation-site pretenuring off before any of its code runs (src/cli.ts):
// in about half of the saturating runs a busy outbound's per-request objects were judged
// long-lived during the first burst and allocated in the old generation from then on, 40-70
// full collections a run at 48-65 µs of CPU a request against 31-40. Set in the entry file, so it
// holds for `node dist/cli.js` and for the workers (which run the same file) as for the
// launcher. Read through V8's cached-data version tag, which hashes the flags in force: at the
// exit of a meshcar command it is the tag of a node started with the flag, not of a plain one.

import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;
const TAG = "require('node:v8').cachedDataVersionTag()";

t.test('a meshcar command runs with allocation-site pretenuring off', async (t) => {
  const probe = join(t.testdir(), 'tag-at-exit.cjs');
  await writeFile(probe, `process.on('exit', () => process.stderr.write('tag ' + ${TAG} + '\\n'));\n`);
  const plain = (await run(process.execPath, ['-p', TAG])).stdout.trim();
  const off = (await run(process.execPath, ['--no-allocation-site-pretenuring', '-p', TAG])).stdout.trim();
  t.not(plain, off, 'the tag tells the flag apart');
  // as `node dist/cli.js` runs it (no launcher line), and as a worker does
  const { stderr } = await run(process.execPath, ['--require', probe, CLI, '--version']);
  t.equal(/tag (\d+)/.exec(stderr)?.[1], off, 'meshcar ran with the flag in force');
});
