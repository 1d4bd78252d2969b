// The identity folder's watch (src/identity/dir-watch.ts) also watches the folder's parent, to
// see the folder replaced; that parent may be busy with other files (a log written beside
// certs/), which must not count as identity changes (each one would re-read the SVID). A
// replaced folder still does, and writes in the new folder are seen.

import t from 'tap';
import { mkdirSync, mkdtempSync, renameSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ReplaceableDirWatch } from '../../src/identity/dir-watch.js';

/** Resolves at the first event about `name` seen by a watch of `dir` of our own (not the tested one). */
function barrier(dir: string, name: string): Promise<void> {
  return new Promise((resolve) => {
    const w = watch(dir, (_type, changed) => {
      if (changed?.toString() !== name) return;
      w.close();
      resolve();
    });
  });
}

/** Waits until `check` holds, polling on a short interval, for at most `ms`. */
async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('events of other names in the parent folder are not identity changes', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'meshcar-dirwatch-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const certs = join(parent, 'certs');
  mkdirSync(certs);
  let changes = 0;
  const dirWatch = new ReplaceableDirWatch([certs], () => changes++, pino({ level: 'silent' }));
  t.teardown(() => dirWatch.close());

  // a busy sibling: our own watch of the parent sees each write; the tested watch, which gets
  // the parent's events in the same read of the kernel's queue, must have ignored them by then
  for (let i = 0; i < 5; i++) {
    const seen = barrier(parent, 'sidecar.log');
    writeFileSync(join(parent, 'sidecar.log'), `line ${i}\n`, { flag: 'a' });
    await seen;
  }
  t.equal(changes, 0, 'writes to a sibling file are not identity changes');

  // a write in the folder is
  writeFileSync(join(certs, 'svid.pem'), 'x');
  await until(() => changes > 0, 'the write in the folder');
  t.pass('a write in the folder is a change');

  // the folder replaced: seen, and the new folder watched
  const fresh = join(parent, 'certs.new');
  mkdirSync(fresh);
  renameSync(certs, join(parent, 'certs.old'));
  renameSync(fresh, certs);
  const before = changes;
  await until(() => changes > before, 'the replacement');
  await until(() => (dirWatch as unknown as { rearming?: Promise<void> }).rearming === undefined, 're-arming to finish');
  const afterReplace = changes;
  writeFileSync(join(certs, 'svid.pem'), 'y');
  await until(() => changes > afterReplace, 'a write in the new folder');
  t.pass('a write in the new folder is a change');
});
