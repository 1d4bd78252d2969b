// identity.files: a set refused only because it is not valid yet is read again once it is, by
// the wall clock. The wait for its start is a timer counting the process's running time; before,
// a host suspended and resumed (or a clock stepped ahead) past that start still waited the
// timer's length (up to an hour) while a valid set lay unused. Now the process's clock watch
// (every 30 s; here every 100 ms) sees the jump and the set is read again at once. The test
// moves this process's Date (helpers/movable-clock.ts); the files are real.

import t from 'tap';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { lookOftenAtTheClock, movableClock, waitFor } from '../helpers/movable-clock.js';
import { identityFromFiles } from '../../src/identity/bootstrap.js';
import type { RenewalEvent } from '../../src/identity/workload-identity.js';
import { writeSvidFileSet } from '../helpers/svid-file-set.js';

const ID = 'spiffe://mesh.test/svc/orders';
const MINUTE = 60_000;

t.test('the wall clock jumping past the start of a refused set: taken at the next look', async (t) => {
  const pki = await makePki();
  const dir = await mkdtemp(join(tmpdir(), 'meshcar-files-'));
  const first = await pki.issue(ID);
  const files = await writeSvidFileSet(dir, first);
  const running = await identityFromFiles({ spiffeId: ID, files, debounceMs: 100, logger: memoryLogger([]) });
  const { identity } = running;
  t.teardown(async () => {
    running.stop();
    await rm(dir, { recursive: true, force: true });
  });
  t.teardown(lookOftenAtTheClock(100));
  const events: RenewalEvent[] = [];
  identity.on('renewal', (e) => events.push(e));

  // issued by a writer whose clock is 30 min ahead: its start is about half an hour away
  const ahead = await pki.issue(ID, { now: new Date(Date.now() + 30 * MINUTE), lifetimeMs: 120 * MINUTE });
  for (const [file, content] of [[files.cert, ahead.chainPem], [files.key, ahead.privateKeyPem]] as const) {
    await writeFile(`${file}.new`, content);
    await rename(`${file}.new`, file);
  }
  const notYet = () => events.some((e) => e.result === 'failure' && /is not valid before/.test(String((e.error as Error | undefined)?.message)));
  t.ok(await waitFor(notYet, 5000), 'refused: not valid yet');
  // control: the clock where it is, a few looks of the watch take nothing
  t.notOk(await waitFor(() => events.some((e) => e.result === 'success'), 500), 'not taken before its start');
  t.equal(identity.current().serialHex, first.serialHex, 'the first set still serves');

  const clock = movableClock();
  t.teardown(clock.restore);
  // 31 min pass by the wall clock in a moment: the set has started
  clock.offset.ms = 31 * MINUTE;
  t.ok(await waitFor(() => identity.current().serialHex === ahead.serialHex, 5000), 'taken within seconds of the jump, nothing written');
  t.equal(events.at(-1)?.result, 'success', 'as a success');
});
