// Closed streams are not kept alive by the connection's books after a full GC (src/h2/open-streams.ts).
// A JS Map of open streams, once a mark-compact has moved its hash table to V8's old generation,
// allocates every later table there, and each table it discards keeps the streams it held:
// every stream (and all it reaches) survived the scavenges and was promoted, a promotion storm
// that lasted as long as the connection (seen in `make bench`: a mark-compact every 0.7 s,
// peak RSS +50 %). Here: our client and server over mutual TLS, one full GC, then streams run
// 50 at a time, each holding 8 KiB of its own on both sides: what the scavenges moved to the
// old generation (v8.GCProfiler, the old space before and after each scavenge, so a
// mark-compact on the way hides nothing) must be a small part of what those streams held.

import t from 'tap';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { H2Stream } from '../../src/h2/stream.js';
import { connectOurClient, readBody, startOurServer } from './fixtures/h2-helpers.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major'; execution?: 'sync' }) => void;

const STREAMS = 1000;
const IN_FLIGHT = 50;
const WARM_UP = 2000;
/** What each stream holds on each side: an array of 1,000 small integers, 8 KiB, reachable only through the stream. */
const hold = (stream: H2Stream): void => void Object.assign(stream, { held: new Array<number>(1000).fill(7) });

type GcStats = ReturnType<v8.GCProfiler['stop']>['statistics'][number];
const oldSpaceOf = (heap: GcStats['beforeGC']): number => heap.heapSpaceStatistics.find((s) => s.spaceName === 'old_space')!.spaceUsedSize;
/** Bytes the scavenges promoted: the old space's growth across each of them. */
const promotedByScavenges = (statistics: GcStats[]): number =>
  statistics.filter((s) => s.gcType === 'Scavenge').reduce((sum, s) => sum + oldSpaceOf(s.afterGC) - oldSpaceOf(s.beforeGC), 0);

t.test('after a full GC, closed streams die young on both sides of a busy connection', async (t) => {
  const server = await startOurServer((stream) => {
    hold(stream);
    stream.on('error', () => {});
    stream.respond({ ':status': 200 });
    stream.end('ok');
  }, { tls: true });
  t.teardown(server.close);
  const conn = await connectOurClient(server.port, { tls: true });
  t.teardown(() => conn.destroy());

  const one = async (i: number): Promise<void> => {
    const stream = conn.request({ ':method': 'GET', ':scheme': 'https', ':authority': 'x', ':path': `/s/${i}` }, { endStream: true });
    hold(stream);
    await readBody(stream);
  };
  // warm up (the connection's books exist and have churned), then one mark-compact, which
  // promotes what is live, the connection's Map included
  for (let i = 0; i < WARM_UP; i += IN_FLIGHT) await Promise.all(Array.from({ length: IN_FLIGHT }, (_, k) => one(i + k)));
  let next = 0;
  const measure = async (): Promise<number> => {
    gc();
    const profiler = new v8.GCProfiler();
    profiler.start();
    next = 0;
    const lane = async (): Promise<void> => {
      while (next < STREAMS) await one(next++);
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    // what only dead tables still reach is copied by the first scavenge, promoted by the second
    gc({ type: 'minor', execution: 'sync' });
    gc({ type: 'minor', execution: 'sync' });
    return promotedByScavenges(profiler.stop().statistics);
  };
  // a mark-compact of V8's own during the run (a loaded machine: CI ran 1.76 MB once, beside
  // three other test processes) starts a renewal window of its own; the regression this guards
  // against promotes 1.7-1.8 MB on every run, so the best of up to three runs is judged
  const runs: number[] = [];
  const held = STREAMS * 2 * 8 * 1024;
  while (runs.length < 3 && !(Math.min(...runs) < held / 32)) runs.push(await measure());
  const promoted = Math.min(...runs);

  // seen: 0.2 MB; with a bare Map 1.7-1.8 MB (the discarded tables of the first 1,000
  // streams after the mark-compact: the storm's start, it only grows from there)
  t.ok(promoted < held / 32, `scavenges promoted ${(promoted / 1e6).toFixed(2)} MB (runs: ${runs.map((r) => (r / 1e6).toFixed(2)).join(', ')}) while the streams held ${(held / 1e6).toFixed(1)} MB (under 1/32 of it)`);
  t.equal(conn.activeStreams, 0, 'every stream closed');
});
