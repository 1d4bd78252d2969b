// An outbound on http2.codec node (http2-wrapper over Node's core http2) in front of an inbound
// on the default meshcar codec, whose h2c app answers gRPC calls with 70 KB of metadata (legal;
// grpc-js takes it direct). The outbound advertised no SETTINGS_MAX_HEADER_LIST_SIZE, so the
// inbound sent the 70 KB head, which Node's client stalled on without a word: the call hung to
// the upstream timeout (504), the trailers call until the keepalive PING killed the session
// (48-90 s), and every other call on that session with them. Now it advertises 64 KiB, as the
// meshcar codec's client does: the inbound answers the head 502 bad_gateway itself, and cuts
// the answer whose trailers do not fit, at once; a call held open beside them on the same
// session (one session opened in all) is answered. With the inbound on `node` too, whose nghttp2
// sends no block over 64 KiB: the head call hung and the session was lost with the call beside it.

import t from 'tap';
import http2 from 'node:http2';
import { startInbound, SERVER_ID } from '../helpers/inbound-fixture.js';
import { h2cRequest, startOutbound, type H2Result } from '../helpers/outbound-fixture.js';
import { GRPC_MESSAGE, startBigMetadataApp } from '../helpers/big-metadata-app.js';

/** Well under the upstream's timeout (10 s) and the keepalive's PING (30 s idle): the answer did not wait for either. */
const PROMPT_MS = 5000;

for (const codec of ['meshcar', 'node'] as const) t.test(`node outbound, ${codec} inbound: 70 KB answer metadata ends its own call at once; the session serves a call beside it`, async (t) => {
  const app = await startBigMetadataApp(t);
  const inbound = await startInbound({ codec, externalApp: { protocol: 'h2c', port: app.port } });
  t.teardown(() => inbound.close());
  const outbound = await startOutbound(inbound.pki, [{ name: 'orders', endpoints: [`127.0.0.1:${inbound.port}`], identity: SERVER_ID, timeoutMs: 10_000 }], { codec: 'node' });
  t.teardown(() => outbound.close());
  let sessionsOpened = 0;
  const counted = outbound.observer.upstreamSessionsChanged.bind(outbound.observer);
  outbound.observer.upstreamSessionsChanged = (upstream, delta) => {
    if (delta > 0) sessionsOpened += delta;
    counted(upstream, delta);
  };

  const client = http2.connect(`http://127.0.0.1:${outbound.port}`);
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  const call = (path: string) => h2cRequest(client, { ':method': 'POST', ':path': path, ':authority': 'orders', 'content-type': 'application/grpc', te: 'trailers' }, GRPC_MESSAGE);
  /** The call's result and how long it took, or 'still waiting' past PROMPT_MS. */
  const timed = async (path: string): Promise<{ result: H2Result | 'still waiting'; ms: number }> => {
    const started = performance.now();
    return { result: await within(call(path)), ms: performance.now() - started };
  };

  // a call held open by the app: the session it opened is the one the big answers come on
  const held = call('/hold');
  await t.resolves(waitForStreams(outbound.observer.streams, 1), 'the held call is in flight');

  const head = await timed('/head');
  t.not(head.result, 'still waiting', `the big head's call ended at once (${Math.round(head.ms)} ms)`);
  if (head.result !== 'still waiting') {
    t.equal(head.result.headers['x-meshcar-error'], 'bad_gateway', "the inbound's own answer: the app's head was over the caller's limit");
    t.equal(head.result.headers['grpc-status'], '14', 'UNAVAILABLE to the gRPC caller');
    t.match(decodeURIComponent(String(head.result.headers['grpc-message'])), /its head of \d+ bytes is over the caller's limit of 65536/, 'naming both sizes');
  }

  const trailers = await timed('/trailers');
  t.not(trailers.result, 'still waiting', `the big trailers' call ended at once (${Math.round(trailers.ms)} ms)`);
  if (trailers.result !== 'still waiting') {
    t.equal(trailers.result.trailers?.['grpc-status'], '14', 'the answer is cut: UNAVAILABLE, not the app OK');
    t.equal(trailers.result.trailers?.['x-bigt'], undefined, 'none of the big trailers');
  }

  app.release();
  const small = await within(held);
  t.equal(small === 'still waiting' ? small : small.trailers?.['grpc-status'], '0', 'the call held beside them on the same session is answered at once');
  const after = await within(call('/after'));
  t.equal(after === 'still waiting' ? after : after.trailers?.['grpc-status'], '0', 'and a new call after them');
  const recorded = (path: string) => outbound.observer.requests.find((r) => r.path === path);
  t.match(recorded('/head'), { status: 502, errorCode: 'bad_gateway', grpcStatus: 14 }, 'the outbound records the 502 bad_gateway');
  t.match(recorded('/trailers'), { status: 200, errorCode: 'upstream_reset', grpcStatus: 14 }, 'and the cut answer as upstream_reset after its 200 head');
  t.equal(sessionsOpened, 1, 'all on one upstream session: none was lost to the big answers');
});

/** The call's result, or 'still waiting' if it has none within PROMPT_MS. */
async function within(call: Promise<H2Result>): Promise<H2Result | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still waiting'>((resolve) => (timer = setTimeout(resolve, PROMPT_MS, 'still waiting')));
  try {
    return await Promise.race([call, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `streams` counts `n` open upstream streams (bounded). */
async function waitForStreams(streams: Map<string, number>, n: number): Promise<void> {
  for (let i = 0; i < 600 && (streams.get('orders') ?? 0) < n; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if ((streams.get('orders') ?? 0) < n) throw new Error(`fewer than ${n} upstream streams after 3 s`);
}
