// The primary's health checks (src/workers/health-checks.ts) as logic, on a 20 ms interval with
// stand-in workers whose pings answer or fail as each test says: a worker is handed to `stuck`
// after two missed pings in a row, not after one followed by an answer; nothing is counted
// while the checks are paused (a reload round), and a ping not yet settled is not sent again;
// a worker that never said hello is handed to `stuck` once, not at every check; a worker whose
// pings fail because it closed its channel (it drained and is on its way out) is not stuck.

import t from 'tap';
import type { Worker } from 'node:cluster';
import { HealthChecks, HELLO_TIMEOUT_MS, MISSES_TO_REPLACE } from '../../src/workers/health-checks.js';

const worker = (id: number, connected = true) => ({ id, isDead: () => false, isConnected: () => connected }) as unknown as Worker;

/** Resolves once `check` holds (polled every 5 ms), or rejects after 2 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 2 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

t.test('two missed pings in a row make a worker stuck; an answer in between starts over', async (t) => {
  t.equal(MISSES_TO_REPLACE, 2);
  // worker 1 never answers; worker 2 fails every other ping
  let pings2 = 0;
  const stuck: number[] = [];
  const checks = new HealthChecks({
    workers: () => [worker(1), worker(2)],
    unheard: () => [],
    ping: (w) => (w.id === 1 || pings2++ % 2 === 0 ? Promise.reject(new Error('timeout')) : Promise.resolve(true)),
    paused: () => false,
    stuck: (w) => stuck.push(w.id),
  }, 20);
  checks.start();
  t.teardown(() => checks.stop());
  await until(() => stuck.length >= 1 && pings2 >= 8, 'worker 1 stuck, worker 2 pinged 8 times');
  checks.stop();
  // once: the primary kills it, and its exit (forget) comes a moment later
  t.same(stuck, [1], 'only the worker that missed two in a row, once');
});

t.test('paused: nothing counts; a ping in flight is not sent again', async (t) => {
  let paused = true;
  let pings = 0;
  const stuck: number[] = [];
  const checks = new HealthChecks({ workers: () => [worker(1)], unheard: () => [], ping: () => (pings++, Promise.reject(new Error('timeout'))), paused: () => paused, stuck: (w) => stuck.push(w.id) }, 20);
  checks.start();
  t.teardown(() => checks.stop());
  await new Promise((resolve) => setTimeout(resolve, 120));
  t.equal(pings, 0, 'no ping while paused');
  paused = false;
  await until(() => stuck.length === 1, 'stuck once unpaused');
  checks.stop();
  let hanging = 0;
  const slow = new HealthChecks({ workers: () => [worker(3)], unheard: () => [], ping: () => (hanging++, new Promise(() => undefined)), paused: () => false, stuck: () => undefined }, 20);
  slow.start();
  await new Promise((resolve) => setTimeout(resolve, 150));
  slow.stop();
  t.equal(hanging, 1, 'one ping at a time per worker');
});

t.test('a worker that never said hello is stuck once, with why; not while paused', async (t) => {
  t.equal(HELLO_TIMEOUT_MS, 10_000);
  let paused = true;
  const stuck: Array<[number, string]> = [];
  const checks = new HealthChecks({ workers: () => [], unheard: () => [worker(4)], ping: () => Promise.resolve(true), paused: () => paused, stuck: (w, why) => stuck.push([w.id, why]) }, 20);
  checks.start();
  t.teardown(() => checks.stop());
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(stuck.length, 0, 'not while paused');
  paused = false;
  await until(() => stuck.length === 1, 'stuck once unpaused');
  await new Promise((resolve) => setTimeout(resolve, 100));
  checks.stop();
  t.same(stuck, [[4, 'it did not say hello within 10 s of its start (stopped or stuck)']], 'once, however many checks see it');
});

t.test('a worker that closed its channel (drained, exiting) misses nothing', async (t) => {
  const stuck: number[] = [];
  let pings = 0;
  const checks = new HealthChecks({
    workers: () => [worker(1, false)],
    unheard: () => [],
    ping: () => {
      pings++;
      return Promise.reject(new Error('worker 1 is not connected'));
    },
    paused: () => false,
    stuck: (w) => stuck.push(w.id),
  }, 20);
  checks.start();
  t.teardown(() => checks.stop());
  await until(() => pings >= 5, '5 pings');
  checks.stop();
  t.same(stuck, [], 'not handed to stuck');
});

t.test('the drain counts misses of its own: one just before it and one at its start are not two', async (t) => {
  const stuck: number[] = [];
  let failing = 2;
  let settled = 0;
  const checks: HealthChecks = new HealthChecks({
    workers: () => [worker(1)],
    unheard: () => [],
    // the last normal check and the drain's first are missed, then the worker answers
    ping: () =>
      (failing-- > 0 ? Promise.reject(new Error('timeout')) : Promise.resolve(true)).finally(() => {
        settled++;
        // the SIGTERM comes right after the normal miss was counted
        if (settled === 1) setImmediate(() => checks.hurry());
      }),
    paused: () => false,
    stuck: (w) => stuck.push(w.id),
  }, 20);
  checks.start();
  t.teardown(() => checks.stop());
  await until(() => settled >= 2, 'the drain check settled');
  await new Promise((resolve) => setImmediate(resolve));
  checks.stop();
  t.same(stuck, [], 'not handed to stuck');
});

t.test('a normal ping still unanswered when the drain begins counts no miss when it fails', async (t) => {
  const stuck: number[] = [];
  const unanswered: Array<(err: Error) => void> = [];
  let pings = 0;
  const checks = new HealthChecks({
    workers: () => [worker(1)],
    unheard: () => [],
    // the first two pings (the last normal one, the drain's first) fail when the test says; then answered
    ping: () => (++pings <= 2 ? new Promise((_resolve, reject) => unanswered.push(reject)) : Promise.resolve(true)),
    paused: () => false,
    stuck: (w) => stuck.push(w.id),
  }, 20);
  checks.start();
  t.teardown(() => checks.stop());
  await until(() => unanswered.length === 1, 'the normal ping sent');
  checks.hurry();
  unanswered[0]!(new Error('timeout'));
  // the drain's next check, a second later (the first was skipped: a ping was in flight)
  await until(() => unanswered.length === 2, "the drain's ping sent");
  unanswered[1]!(new Error('timeout'));
  await new Promise((resolve) => setImmediate(resolve));
  checks.stop();
  t.same(stuck, [], 'not handed to stuck: one miss of the drain only');
});
