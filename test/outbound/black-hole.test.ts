// An endpoint that takes every stream and never answers, behind apps that put their own
// deadlines on their requests (x-request-timeout, grpc-timeout: every gRPC client does). Each
// request there ends by its app's deadline, which is no failure of the endpoint (nothing is
// ejected for it), but the time waited is a latency the endpoint had at least: the balancer
// turns away from it. Left unlearned, its cost stayed that of a fresh endpoint (0), below any
// answering one, and it drew every request. Both codecs (the counting is shared).

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { makePki, request, startUpstream, TD, type H2Handler } from '../helpers/outbound-fixture.js';
import { startBalanced } from '../helpers/outbound-balance-fixture.js';

/** Takes the request and its body, answers nothing. */
const neverAnswers: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
};

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a black hole does not draw the requests of apps with deadlines`, async (t) => {
    const pki = await makePki(TD);
    const answering = await startUpstream(pki);
    const hole = await startUpstream(pki, { handler: neverAnswers });
    const fx = await startBalanced(pki, { ports: [answering.port, hole.port], codec });
    t.teardown(async () => {
      await fx.close();
      await answering.close();
      await hole.close();
    });
    // one at a time, as a quiet caller sends them: nothing outstanding to tell the two apart
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await request(fx.port, { headers: { 'x-request-timeout': '200ms' } })).status);
    // the first request or two may find the hole (both start unknown); then it is known slow
    t.ok(hole.requests <= 2, `the hole got ${hole.requests} of 20 (all 20 before)`);
    // counted where the requests went, not by status: on a loaded machine an answer may miss its deadline too
    t.ok(answering.requests >= 18, `the answering endpoint got the rest (${answering.requests}; statuses ${statuses.join(' ')})`);
    t.equal(fx.observer.ejections, 0, "no ejection: the app's deadline is no failure of the endpoint");
  });
}

t.test('an upload the app gives up on before its end says nothing of the endpoint: it still serves', async (t) => {
  const pki = await makePki(TD);
  const ups = [await startUpstream(pki), await startUpstream(pki)];
  const fx = await startBalanced(pki, { ports: ups.map((u) => u.port) });
  t.teardown(async () => {
    await fx.close();
    for (const u of ups) await u.close();
  });
  for (let i = 0; i < 4; i++) await request(fx.port);
  // a slow upload, abandoned by its app after 600 ms: that time was the app's, not the endpoint's
  const before = ups.map((u) => u.requests);
  await new Promise<void>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'PUT', path: '/echo', headers: { host: 'payments', 'transfer-encoding': 'chunked' }, agent: false });
    req.on('error', () => resolve());
    req.write('part of it');
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 600);
  });
  const uploadedTo = ups.findIndex((u, i) => u.requests > (before[i] as number));
  t.ok(uploadedTo >= 0, 'the upload reached an endpoint');
  const after = (ups[uploadedTo] as (typeof ups)[number]).requests;
  // its estimate is left as it was: it is picked again (with a 600 ms sample it was not, for a minute)
  for (let i = 0; i < 100 && (ups[uploadedTo] as (typeof ups)[number]).requests === after; i++) await request(fx.port);
  t.ok((ups[uploadedTo] as (typeof ups)[number]).requests > after, 'the endpoint of the abandoned upload serves again');
});

// The same with a head: an endpoint that answers each call's head at once and then nothing
// (no message, no trailers). A gRPC client's deadline ends each call after the head, which the
// response deadline no longer covers; the head had counted as a fast answer and the app's
// cancel as nothing, so it drew 19 of 20 calls, each failing at its deadline. The app giving up
// at its own deadline with the answer unfinished is now a latency the endpoint had at least.
const grpcAnswers: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
};
const headThenNothing: H2Handler = (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
};

/** A unary gRPC call with a 200 ms deadline, cancelled by its client when that passes, as gRPC clients do. */
function callWithDeadline(session: http2.ClientHttp2Session): Promise<string> {
  return new Promise((resolve) => {
    const s = session.request({ ':method': 'POST', ':path': '/svc.Orders/Get', ':authority': 'payments', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' });
    const timer = setTimeout(() => {
      s.close(http2.constants.NGHTTP2_CANCEL);
      resolve('deadline');
    }, 200);
    s.on('trailers', (trailers) => {
      clearTimeout(timer);
      resolve(`grpc-status ${String(trailers['grpc-status'])}`);
    });
    s.on('error', () => {});
    s.resume();
    s.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an endpoint that answers a head and then nothing does not draw the calls of apps with deadlines`, async (t) => {
    const pki = await makePki(TD);
    const answering = await startUpstream(pki, { handler: grpcAnswers });
    const hanging = await startUpstream(pki, { handler: headThenNothing });
    const fx = await startBalanced(pki, { ports: [answering.port, hanging.port], codec });
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    session.on('error', () => {});
    t.teardown(async () => {
      session.destroy();
      await fx.close();
      await answering.close();
      await hanging.close();
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) outcomes.push(await callWithDeadline(session));
    t.ok(hanging.requests <= 3, `the hanging endpoint got ${hanging.requests} of 20 (19 before): ${outcomes.join(', ')}`);
    t.equal(fx.observer.ejections, 0, "no ejection: the app's deadline is no failure of the endpoint");
  });
}
