// Identity files a user names must be regular files (or pipes) of a sane size: `/dev/zero` or a
// folder as `identity.files.cert` (or the CA bundle, or the join token) is one clear error at
// once, never a read that waits for a writer or grows without end (626 MB before the error,
// an OOM kill loop under a container's memory limit).

import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';

import { loadSvidFiles } from '../../src/identity/files-source.js';
import { readBoundedFile, BoundedReadError } from '../../src/bounded-file.js';
import { MAX_PEM_FILE_BYTES } from '../../src/identity/pem-files.js';

t.test('the bounded reader: regular files up to the cap; devices and folders refused at once', async (t) => {
  const dir = t.testdir({ 'small.pem': 'x'.repeat(100) });
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const big = join(dir, 'big.pem');
  await writeFile(big, Buffer.alloc(MAX_PEM_FILE_BYTES + 1));
  t.equal((await readBoundedFile(join(dir, 'small.pem'), 100)).length, 100, 'exactly the cap');
  const started = Date.now();
  await t.rejects(readBoundedFile(fifo, MAX_PEM_FILE_BYTES, 200), { code: 'too_slow' }, 'a FIFO without a writer: given up at the deadline');
  for (const [file, code] of [['/dev/zero', 'not_a_file'], [dir, 'not_a_file'], [big, 'too_large']] as const) {
    await t.rejects(readBoundedFile(file, MAX_PEM_FILE_BYTES), { name: 'BoundedReadError', code }, `${file}: ${code}`);
  }
  t.ok(Date.now() - started < 2000, 'at once');
  t.ok(new BoundedReadError('x', 'too_large') instanceof Error);
});

t.test('identity.files naming /dev/zero: identity_invalid naming the key, at once', async (t) => {
  const dir = t.testdir({ 'key.pem': 'not a key' });
  for (const cert of ['/dev/zero']) {
    const files = { cert, key: join(dir, 'key.pem'), bundle: join(dir, 'key.pem') };
    await t.rejects(loadSvidFiles(files, 'spiffe://mesh.local/svc/orders'), { code: 'identity_invalid', message: new RegExp(`identity\\.files\\.cert: cannot read ${cert.replace(/[./]/g, '\\$&')}: .*not a regular file or a pipe`) });
  }
});
