// identity.files beside other files that change: a folder the certificates share with something
// written often (a heartbeat or status file, a writer that rewrites the same bytes). Every event
// in the folder puts the read off by the debounce (200 ms); written every 100 ms, the folder's
// new set went unread for as long as the writes went on, and nothing said so. And while a set
// refused as not valid yet waited for its date, each such event read it again: another warning
// and another failed renewal counted at every event, where the README promises one line.

import t from 'tap';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makePki, type IssuedLeaf } from '../helpers/pki.js';
import { memoryLogger } from '../helpers/ca.js';
import { identityFromFiles } from '../../src/identity/bootstrap.js';
import type { RenewalEvent } from '../../src/identity/workload-identity.js';
import { writeSvidFileSet } from '../helpers/svid-file-set.js';

const ID = 'spiffe://mesh.test/svc/orders';

async function watched(t: Tap.Test) {
  const pki = await makePki();
  const dir = await mkdtemp(join(tmpdir(), 'meshcar-busy-'));
  const first = await pki.issue(ID);
  const files = await writeSvidFileSet(dir, first);
  const lines: Array<Record<string, unknown>> = [];
  const running = await identityFromFiles({ spiffeId: ID, files, debounceMs: 200, logger: memoryLogger(lines) });
  t.teardown(async () => {
    running.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const replace = async (file: string, content: string) => {
    const temp = join(dir, `.incoming-${Math.random().toString(16).slice(2)}`);
    await writeFile(temp, content);
    await rename(temp, file);
  };
  const swapIn = async (leaf: IssuedLeaf) => {
    await replace(files.cert, leaf.chainPem);
    await replace(files.key, leaf.privateKeyPem);
  };
  const events: RenewalEvent[] = [];
  running.identity.on('renewal', (e: RenewalEvent) => events.push(e));
  return { pki, dir, identity: running.identity, lines, swapIn, events };
}

t.test('a new set is read within a second while another file in the folder is written every 100 ms', async (t) => {
  const { pki, dir, identity, swapIn } = await watched(t);
  const second = await pki.issue(ID);
  const taken = once(identity, 'renewal');
  let swapped = 0;
  let noisy = true;
  // the neighbour writes for at most 4 s, or until the set is taken
  const noise = (async () => {
    for (let i = 0; i < 40 && noisy; i++) {
      await writeFile(join(dir, 'heartbeat.txt'), String(Date.now()));
      await new Promise((r) => setTimeout(r, 100));
    }
    noisy = false;
  })();
  await new Promise((r) => setTimeout(r, 250));
  swapped = performance.now();
  await swapIn(second);
  const [event] = (await taken) as [RenewalEvent];
  const tookMs = performance.now() - swapped;
  const whileNoisy = noisy;
  noisy = false;
  await noise;
  t.equal(event.result, 'success', 'the new set is taken');
  t.ok(whileNoisy, `taken while the neighbour still wrote (${Math.round(tookMs)} ms after the swap)`);
  t.equal(identity.current().serialHex, second.serialHex);
});

t.test('a set not valid yet is refused once, not again at each event in its folder while it waits', async (t) => {
  const { pki, dir, identity, lines, swapIn, events } = await watched(t);
  // issued "10 s from now", backdated 6 s: valid from ~4 s ahead of our clock
  const ahead = await pki.issue(ID, { now: new Date(Date.now() + 10_000), lifetimeMs: 60_000 });
  await swapIn(ahead);
  const notYet = () => lines.filter((l) => l.level === 40 && /is not valid before/.test(String(l.msg)));
  const until = Date.now() + 5_000;
  while (notYet().length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(notYet().length, 1, 'refused: not valid yet');
  const failuresBefore = events.filter((e) => e.result === 'failure').length;
  // another file in the folder written 6 times while the set waits for its date (~2 s)
  for (let i = 0; i < 6; i++) {
    await writeFile(join(dir, 'status.txt'), String(i));
    await new Promise((r) => setTimeout(r, 300));
  }
  t.equal(notYet().length, 1, 'still one warning after 6 unrelated writes');
  t.equal(events.filter((e) => e.result === 'failure').length, failuresBefore, 'no more failed renewals counted');
  const taken = events.some((e) => e.result === 'success') ? undefined : once(identity, 'renewal');
  if (taken) t.equal(((await taken) as [RenewalEvent])[0].result, 'success', 'taken once valid, with no new write');
  t.equal(identity.current().serialHex, ahead.serialHex, 'and in use');
});

t.test("a set not valid yet, replaced before its date by a set refused for another reason: that one is warned of once, not again when the first one's date comes", async (t) => {
  const { pki, lines, swapIn, events } = await watched(t);
  // valid from ~2 s ahead (issued 8 s ahead, backdated 6 s), then another service's set
  const ahead = await pki.issue(ID, { now: new Date(Date.now() + 8_000), lifetimeMs: 60_000 });
  await swapIn(ahead);
  const notYet = () => lines.filter((l) => l.level === 40 && /is not valid before/.test(String(l.msg)));
  const other = () => lines.filter((l) => l.level === 40 && /is for spiffe:\/\/mesh\.test\/svc\/other/.test(String(l.msg)));
  let until = Date.now() + 5_000;
  while (notYet().length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(notYet().length, 1, 'the first set: not valid yet');
  await swapIn(await pki.issue('spiffe://mesh.test/svc/other'));
  until = Date.now() + 5_000;
  while (other().length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(other().length, 1, 'the second set: refused');
  const failures = events.filter((e) => e.result === 'failure').length;
  // past the first set's date and the 1 s margin its look was armed for (~3 s from its refusal)
  await new Promise((r) => setTimeout(r, 4_000));
  t.equal(other().length, 1, 'no second warning of the second set when the first one\'s date passes');
  t.equal(events.filter((e) => e.result === 'failure').length, failures, 'nor a second failed renewal');
});
