// An endpoint that goes silent after a quiet spell (its packets dropped, a hung process: it
// takes streams and answers nothing): its latency estimate had decayed to near nothing in the
// quiet, and requests waiting on it raised nothing until their timeout, so it drew nearly every
// request beside a healthy endpoint (a review of network partitions: 20 of the next 33, each
// a 504 after 15 s). The cost now counts how long requests have waited for a head with none
// coming: after the first few, requests go to the endpoint that answers.

import t from 'tap';
import { defaultHandler, makePki, request, sleep, startUpstream, type H2Handler } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';

t.test('an endpoint gone silent after a quiet spell draws a few requests, not all', async (t) => {
  const pki = await makePki();
  const state = { silent: false, heldOnSilent: 0 };
  const held: Parameters<H2Handler>[0][] = [];
  const good = await startUpstream(pki);
  const silent = await startUpstream(pki, {
    handler: (stream, headers, flags) => {
      if (!state.silent) return defaultHandler(stream, headers, flags);
      // taken, never answered
      state.heldOnSilent += 1;
      stream.on('error', () => {});
      held.push(stream);
    },
  });
  const fx = await startBalanced(pki, { ports: [good.port, silent.port], timeoutMs: 1500, balancer: { decayMs: 50 } });
  t.teardown(async () => {
    await fx.close();
    for (const stream of held) stream.destroy();
    await silent.close();
    await good.close();
  });
  // both answer, both get a latency estimate
  for (let i = 0; i < 20; i++) t.equal((await request(fx.port)).status, 200);
  t.ok(good.requests > 0 && silent.requests > 0, `both served (${good.requests}, ${silent.requests})`);
  // the quiet spell is the stimulus itself: twelve decay times, the estimates near nothing
  await sleep(600);
  state.silent = true;
  // requests 20 ms apart, none waiting for an earlier one (the stuck ones end at the 1.5 s timeout)
  const sent: Array<Promise<number>> = [];
  for (let i = 0; i < 30; i++) {
    sent.push(request(fx.port).then((r) => r.status));
    await sleep(20);
  }
  const statuses = await Promise.all(sent);
  const stuck = statuses.filter((s) => s === 504).length;
  t.comment(`held by the silent endpoint: ${state.heldOnSilent} of 30; answered: ${statuses.filter((s) => s === 200).length}`);
  t.ok(state.heldOnSilent <= 4, `the silent endpoint drew ${state.heldOnSilent} of 30 requests`);
  t.equal(stuck, state.heldOnSilent, 'those, and only those, ended at the timeout');
});
