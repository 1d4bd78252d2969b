// openapi.maxBuffered: the bodies one spec's check holds at once, all requests together. Over
// a real inbound (HTTP/2, both codecs): callers that hold their bodies back fill the budget and
// the next body is 503 overloaded in enforce mode (unchecked, forwarded, in shadow); a body
// that ends, is refused, or is abandoned (stream reset) gives its bytes back. One caller may
// hold all of it but an eighth: the others' bodies still fit while it trickles its own.

import t from 'tap';
import { resolve } from 'node:path';
import type http2 from 'node:http2';
import { loadGuard } from '../../src/schema/guard.js';
import { h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';

const SPEC = resolve('config/orders.openapi.yaml');
const HEAD = { ':method': 'POST', ':path': '/orders', 'content-type': 'application/json', 'idempotency-key': 'idem-0001' };
// 182 bytes of a valid order, held back before its end
const PART = `{"item":"book","qty":3,"note":"${'x'.repeat(150)}"`;
// a second caller: one caller alone may hold only all but an eighth of the budget
const OTHER_ID = `spiffe://${TD}/svc/billing`;

/** A POST whose body stops before its end: the stream, once its first bytes are out. */
function holdBack(session: http2.ClientHttp2Session): http2.ClientHttp2Stream {
  const stream = session.request(HEAD, { endStream: false });
  stream.on('error', () => {});
  stream.write(PART);
  return stream;
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`${codec} codec: enforce answers 503 overloaded past maxBuffered; bytes come back`, async (t) => {
    const f = await startInbound({ codec });
    t.teardown(() => f.close());
    // four held bodies nearly fill it: each is given maxBodySize (512) to grow in, 2,048 of 2,100
    const guard = await loadGuard({ spec: SPEC, mode: 'enforce', maxBodySize: 512, maxBuffered: 2100 });
    f.inbound.setSchema(guard);
    const session = await h2Connect(f.port, await f.tlsOptions());
    t.teardown(() => session.close());
    const other = await h2Connect(f.port, await f.tlsOptions(OTHER_ID));
    t.teardown(() => other.close());
    const held = [holdBack(session), holdBack(session), holdBack(other), holdBack(other)];
    await waitFor(async () => guard.budget.used === 4 * 512, 5000, 'four bodies held, two of each caller');
    const refused = await h2Request(session, HEAD, `${PART}}`);
    t.equal(refused.headers[':status'], 503);
    t.equal(refused.headers['x-meshcar-error'], 'overloaded');
    t.match(JSON.parse(refused.body).message, /openapi\.maxBuffered/);
    // one held body ends (answered), one is abandoned: both give their bytes back
    const ended = new Promise<number>((done) => held[0]!.on('response', (h) => done(Number(h[':status']))));
    held[0]!.end('}');
    t.equal(await ended, 200, 'a held body that ends is answered');
    held[1]!.close();
    await waitFor(async () => guard.budget.used === 2 * 512, 5000, 'two bodies given back');
    const ok = await h2Request(session, HEAD, `${PART}}`);
    t.equal(ok.headers[':status'], 200, 'room again');
    for (const s of held.slice(2)) s.close();
    await waitFor(async () => guard.budget.used === 0, 5000, 'every byte given back');
  });
}

t.test('shadow: past maxBuffered a body goes on unchecked', async (t) => {
  const f = await startInbound();
  t.teardown(() => f.close());
  const guard = await loadGuard({ spec: SPEC, mode: 'shadow', maxBodySize: 512, maxBuffered: 1600 });
  f.inbound.setSchema(guard);
  const session = await h2Connect(f.port, await f.tlsOptions());
  t.teardown(() => session.close());
  const other = await h2Connect(f.port, await f.tlsOptions(OTHER_ID));
  t.teardown(() => other.close());
  const held = [holdBack(session), holdBack(session), holdBack(other)];
  await waitFor(async () => guard.budget.used === 3 * 512, 5000, 'three bodies watched');
  // an invalid order (qty 0): over the budget it is not watched, so no violation is recorded
  const res = await h2Request(session, HEAD, JSON.stringify({ item: 'book', qty: 0, note: 'y'.repeat(100) }));
  t.equal(res.headers[':status'], 200, 'forwarded');
  const records = await f.observer.waitForRequests(1);
  t.equal(records[0]?.schema?.violation, undefined, 'not checked: nothing recorded');
  for (const s of held) s.close();
  await waitFor(async () => guard.budget.used === 0, 5000, 'every byte given back');
});

for (const mode of ['enforce', 'shadow'] as const) {
  t.test(`${mode}: one caller's held bodies leave the others an eighth of the budget`, async (t) => {
    const f = await startInbound();
    t.teardown(() => f.close());
    // 4,096 bytes, eight bodies of 512: one caller may hold 3,584 of it, seven bodies
    const guard = await loadGuard({ spec: SPEC, mode, maxBodySize: 512, maxBuffered: 4096 });
    f.inbound.setSchema(guard);
    const hog = await h2Connect(f.port, await f.tlsOptions());
    t.teardown(() => hog.close());
    // a compromised caller holds back as many bodies as it can: its eighth is past its share
    const eighth = new Promise<number>((done) => {
      const streams = Array.from({ length: 8 }, () => holdBack(hog));
      t.teardown(() => streams.forEach((s) => s.close()));
      streams[7]!.on('response', (h) => done(Number(h[':status'])));
    });
    await waitFor(async () => guard.budget.used >= 7 * 512, 5000, 'seven bodies held by one caller');
    // the ping's answer comes after the server handled the frames sent before it (the eighth's)
    await new Promise<void>((done) => hog.ping(() => done()));
    t.equal(guard.budget.used, 7 * 512, 'the eighth is not held');
    // another caller's body is still read and checked (an invalid one: qty 0); it was 503 (unchecked in shadow)
    const other = await h2Connect(f.port, await f.tlsOptions(OTHER_ID));
    t.teardown(() => other.close());
    const invalid = await h2Request(other, HEAD, JSON.stringify({ item: 'book', qty: 0 }));
    t.equal(invalid.headers[':status'], mode === 'enforce' ? 400 : 200, `${mode}: another caller's invalid body is checked (${mode === 'enforce' ? 'refused' : 'forwarded'})`);
    if (mode === 'enforce') t.equal(await eighth, 503, 'enforce: the eighth is refused, 503 overloaded');
    await waitFor(async () => f.observer.requests.some((r) => r.schema?.violation?.kind === 'body'), 5000, "its violation is recorded");
    t.equal(guard.budget.heldBy(`spiffe://${TD}/svc/frontend`), 7 * 512, "the hog's bytes are counted as its own");
    hog.destroy();
    await waitFor(async () => guard.budget.used === 0 && guard.budget.heldBy(`spiffe://${TD}/svc/frontend`) === 0, 5000, 'every byte given back');
  });
}
