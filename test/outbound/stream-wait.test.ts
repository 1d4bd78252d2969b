// StreamWait.bound and a hold (a request held for a silent session's probe verdict,
// probed-sessions.ts): the bound does not pass while the work holds, and after the hold it runs
// a whole bound again from the hold's end; without a hold it passes at its length, as before.
// (A dial right after a long hold had only what was left of a turn: an endpoint failure 33 ms
// into it.) Holds in turns, as a held request looks again; a hold ended that was never on
// changes nothing. Real timers, a 300 ms bound.

import t from 'tap';
import { StreamWait } from '../../src/outbound/stream-wait.js';
import type { UpstreamEndpoint } from '../../src/outbound/endpoints.js';

const LIMIT_MS = 300;
const endpoint = { key: '127.0.0.1:1' } as UpstreamEndpoint;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The bound's timer is unref'd, as every outbound timer: this keeps the test's process up while it runs. */
function keepUp(t: Tap.Test): void {
  const up = setInterval(() => {}, 1_000);
  t.teardown(() => clearInterval(up));
}

t.test('a hold longer than the bound, then a short dial: the stream comes', async (t) => {
  const wait = new StreamWait();
  const got = await wait.bound(
    endpoint,
    LIMIT_MS,
    async (token) => {
      token.holding?.(true);
      await sleep(2 * LIMIT_MS - 30); // the bound's timer passed once meanwhile, and is due 30 ms after the hold
      token.holding?.(false);
      await sleep(80); // the dial after it
      return 'stream';
    },
    () => {},
  );
  t.equal(got, 'stream');
});

t.test('holds in 250 ms turns, as a held request looks again, then a short dial: the stream comes', async (t) => {
  const wait = new StreamWait();
  const got = await wait.bound(
    endpoint,
    LIMIT_MS,
    async (token) => {
      for (let turn = 0; turn < 4; turn++) {
        token.holding?.(true);
        await sleep(250);
        token.holding?.(false);
      }
      await sleep(80);
      return 'stream';
    },
    () => {},
  );
  t.equal(got, 'stream');
});

t.test('a hold ended that was never on changes nothing', async (t) => {
  keepUp(t);
  const wait = new StreamWait();
  const started = performance.now();
  const outcome = await wait
    .bound(
      endpoint,
      LIMIT_MS,
      async (token) => {
        await sleep(200);
        token.holding?.(false);
        return new Promise<string>(() => {});
      },
      () => {},
    )
    .then(
      () => 'resolved',
      (err: Error) => err.message,
    );
  const tookMs = performance.now() - started;
  t.match(outcome, /no stream within 300 ms/);
  t.ok(tookMs < LIMIT_MS + 150, `the bound passed at its length (${Math.round(tookMs)} ms)`);
});

t.test('after a hold the bound passes a whole bound later, not sooner and not never', async (t) => {
  keepUp(t);
  const wait = new StreamWait();
  let holdEnded = 0;
  const started = performance.now();
  const outcome = await wait
    .bound(
      endpoint,
      LIMIT_MS,
      async (token) => {
        token.holding?.(true);
        await sleep(LIMIT_MS + 100);
        token.holding?.(false);
        holdEnded = performance.now();
        return new Promise<string>(() => {}); // a dial that never ends
      },
      () => {},
    )
    .then(
      () => 'resolved',
      (err: Error) => err.message,
    );
  const afterHold = performance.now() - holdEnded;
  t.match(outcome, /no stream within 300 ms/, `the bound passed (${Math.round(performance.now() - started)} ms in)`);
  t.ok(afterHold >= LIMIT_MS - 5 && afterHold < LIMIT_MS + 250, `a whole bound after the hold ended (${Math.round(afterHold)} ms)`);
});

t.test('no hold: the bound passes at its length', async (t) => {
  keepUp(t);
  const wait = new StreamWait();
  const started = performance.now();
  const outcome = await wait.bound(endpoint, LIMIT_MS, () => new Promise<string>(() => {}), () => {}).then(
    () => 'resolved',
    (err: Error) => err.message,
  );
  const tookMs = performance.now() - started;
  t.match(outcome, /no stream within 300 ms/);
  t.ok(tookMs >= LIMIT_MS - 5 && tookMs < LIMIT_MS + 250, `after ${Math.round(tookMs)} ms`);
});
