// An upstream endpoint that holds a valid mesh certificate but answers so that nothing it says
// is a failure the balancer counted (from a read-only review, "review-up" M1-M3):
// - it resets every stream with ENHANCE_YOUR_CALM, or answers heads over our limits: those are
//   502 and no failure toward ejection, and with no latency sample its cost decayed to 0, so
//   the power-of-two pick sent it 99 of 100 requests beside a healthy endpoint. Now each such
//   answer is a latency penalty: the healthy endpoint takes the traffic, and still no ejection;
// - it announces SETTINGS_MAX_HEADER_LIST_SIZE 1 (meshcar codec, which honours it): every
//   request routed to it was answered 431 headers_too_large, blamed on the app, and never sent.
//   Now another endpoint is tried (this one penalized); 431 only when none takes the head;
// - it lowers SETTINGS_MAX_CONCURRENT_STREAMS to 0 after each answer: the outbound opened a new
//   session per request and kept each to its maximum age. Now a session that can take no
//   stream and carries none is closed;
// - it answers :status 600 (Node's codec hands on any three digits): an HTTP/1.1 app got
//   `HTTP/1.1 600 unknown`. Now 502 bad_gateway on both codecs;
// - it sends an answer's head, then resets the stream before any body: node:http writes a head
//   only with the first byte of body, so the HTTP/1.1 app got an empty reply (the connection
//   closed, no status) while the record said 200. The head is now held until the body's first
//   byte, within the turn that brought it (held-heads.ts): a reset in that read gets the app the
//   502 JSON, and the record says so; a reset after it finds the head sent (an SSE stream must
//   have it at once), so the app sees the 200 cut, and the record says upstream_reset;
// - it answers every request with a head (and maybe a first chunk), then resets the stream: the
//   head counted as a fast success and nothing counted the cut, so it drew 6-38 of 40 requests,
//   each one broken. Now the cut is a failure with the latency penalty.

import t, { type Test } from 'tap';
import http from 'node:http';
import { makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { startHostileUpstream, type HostileUpstream } from '../helpers/hostile-upstream.js';
import type { TestPki } from '../helpers/pki.js';
import { ERROR, FLAG, frame, FRAME, settingsFrame } from '../helpers/raw-h2.js';

const CODECS = ['meshcar', 'node'] as const;
const STATUS_200 = Buffer.from([0x88]); // HPACK: :status 200, static table index 8
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

function rst(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

/** 300 fields: over the 256 an answer head may have. */
function headOverLimits(): Buffer {
  const parts = [STATUS_200];
  for (let i = 0; i < 300; i++) parts.push(Buffer.from([0x00, 3, 0x78, 0x2d, 0x66, String(i).length, ...Buffer.from(String(i))]));
  return Buffer.concat(parts);
}

const REQUESTS = 40;

/** An outbound whose upstream has a healthy endpoint and `hostile`; REQUESTS calls through it, one at a time: their statuses (0: cut). */
async function callsBeside(t: Test, pki: TestPki, hostile: HostileUpstream, codec: (typeof CODECS)[number]): Promise<number[]> {
  const healthy = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${healthy.port}`, `127.0.0.1:${hostile.port}`] }], { codec });
  t.teardown(async () => {
    await fx.close();
    await hostile.close();
    await healthy.close();
  });
  const statuses: number[] = [];
  // 0: an answer cut after its head (the helper rejects it)
  for (let i = 0; i < REQUESTS; i++) statuses.push(await request(fx.port, { path: '/echo' }).then((r) => r.status, () => 0));
  return statuses;
}

for (const codec of CODECS) {
  for (const how of ['reset ENHANCE_YOUR_CALM', 'head over the limits'] as const) {
    t.test(`codec ${codec}: an endpoint that answers every request with ${how} does not draw the traffic`, async (t) => {
      const pki = await makePki(TD);
      const hostile = await startHostileUpstream(pki, (c, id) => c.write(how === 'reset ENHANCE_YOUR_CALM' ? rst(id, ERROR.ENHANCE_YOUR_CALM) : frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headOverLimits())));
      const statuses = await callsBeside(t, pki, hostile, codec);
      t.ok(hostile.requests <= 8, `the hostile endpoint got ${hostile.requests} of ${REQUESTS} requests (99 of 100 before)`);
      // a GET the hostile endpoint reset so is retried on the healthy one (calmed-sessions.ts: the
      // peer's reset, or any on Node's codec), so its 502s may be fewer than its requests
      t.ok(statuses.filter((s) => s === 200).length >= REQUESTS - hostile.requests, 'every other one answered by the healthy endpoint');
      t.ok(statuses.every((s) => s === 200 || s === 502), 'the hostile answers are 502');
    });
  }
}

for (const codec of CODECS) {
  for (const body of ['no body', 'a first chunk'] as const) {
    t.test(`codec ${codec}: an endpoint that answers every request with a head, ${body}, then a reset does not draw the traffic`, async (t) => {
      const pki = await makePki(TD);
      // a well-behaved HTTP/2 server otherwise (SETTINGS, PINGs, window updates all answered)
      const cutting = await startUpstream(pki, {
        handler: (stream) => {
          stream.on('error', () => {});
          stream.resume();
          stream.respond({ ':status': 200 });
          if (body === 'a first chunk') stream.write('partial');
          // a moment later (the head has reached the balancer as a fast answer), RST_STREAM
          // INTERNAL_ERROR: destroy, as close() would end the body first
          setTimeout(() => stream.destroy(new Error('cut')), 5);
        },
      });
      const healthy = await startUpstream(pki);
      const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${healthy.port}`, `127.0.0.1:${cutting.port}`] }], { codec });
      t.teardown(async () => {
        await fx.close();
        await cutting.close();
        await healthy.close();
      });
      for (let i = 0; i < REQUESTS; i++) await request(fx.port, { path: '/echo' }).catch(() => undefined);
      t.ok(cutting.requests <= 4, `the cutting endpoint got ${cutting.requests} of ${REQUESTS} requests (6-38 of 40 before)`);
      const cut = (await fx.observer.waitForRequests(REQUESTS)).filter((r) => r.errorCode === 'upstream_reset').length;
      t.equal(cut, cutting.requests, 'each of its answers recorded as cut (upstream_reset)');
    });
  }
}

t.test('codec meshcar: an endpoint announcing SETTINGS_MAX_HEADER_LIST_SIZE 1 does not turn requests into 431s', async (t) => {
  const pki = await makePki(TD);
  const hostile = await startHostileUpstream(pki, (c, id) => c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, STATUS_200)), [[SETTINGS_MAX_HEADER_LIST_SIZE, 1]]);
  const statuses = await callsBeside(t, pki, hostile, 'meshcar');
  t.same([...new Set(statuses)], [200], `all ${REQUESTS} answered by the healthy endpoint (431 for each routed to the other before)`);
  t.equal(hostile.requests, 0, 'nothing was sent to the endpoint that refuses every head');

  // alone, it is what there is: 431, as before
  const alone = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec: 'meshcar' });
  t.teardown(() => alone.close());
  const res = await request(alone.port, { path: '/echo' });
  t.equal(res.status, 431, 'a single endpoint that takes no head: 431');
  t.equal(res.headers['x-meshcar-error'], 'headers_too_large');
});

for (const codec of CODECS) {
  t.test(`codec ${codec}: an endpoint that allows no more streams after each answer does not get a session per request`, async (t) => {
    const pki = await makePki(TD);
    const hostile = await startHostileUpstream(
      pki,
      (c, id) => {
        c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, STATUS_200));
        c.write(settingsFrame([[SETTINGS_MAX_CONCURRENT_STREAMS, 0]]));
      },
      [[SETTINGS_MAX_CONCURRENT_STREAMS, 100]],
    );
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await hostile.close();
    });
    for (let i = 0; i < 30; i++) t.equal((await request(fx.port, { path: '/echo' })).status, 200, `request ${i + 1}`);
    // each request needs a new session (the peer allows no stream on the last one); the spent ones close
    await waitFor(async () => hostile.open() <= 2, 5_000, 'spent sessions closed').catch(() => undefined);
    t.ok(hostile.open() <= 2, `${hostile.open()} of ${hostile.connections.length} sessions still open (30 before)`);
  });
}

for (const codec of CODECS) {
  t.test(`codec ${codec}: an answer with :status 600 or 999 is 502, never relayed`, async (t) => {
    const pki = await makePki(TD);
    let status = '600';
    // HPACK: :status (static name 8) as a literal value, not indexed: any three digits
    const hostile = await startHostileUpstream(pki, (c, id) => c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, Buffer.from([0x08, 3, ...Buffer.from(status)]))));
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await hostile.close();
    });
    for (const s of ['600', '999']) {
      status = s;
      const res = await request(fx.port, { path: '/echo' });
      t.equal(res.status, 502, `:status ${s}: 502`);
      // Node's codec hands the head on (bad_gateway here); meshcar's refuses it as a malformed stream
      t.match(res.headers['x-meshcar-error'], codec === 'node' ? 'bad_gateway' : /^(bad_gateway|upstream_reset)$/);
    }
  });
}

for (const codec of CODECS) {
  t.test(`codec ${codec}: a head then a reset in the same read, before any body, is a 502 to an HTTP/1.1 app, not an empty reply`, async (t) => {
    const pki = await makePki(TD);
    const hostile = await startHostileUpstream(pki, (c, id) => c.write(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS, id, STATUS_200), rst(id, ERROR.PROTOCOL_ERROR)])));
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await hostile.close();
    });
    const res = await request(fx.port, { path: '/echo' });
    t.equal(res.status, 502, 'a 502');
    t.equal(res.headers['x-meshcar-error'], 'upstream_reset');
    t.match(res.json<{ error: string }>(), { error: 'upstream_reset' }, 'with the JSON body');
    const record = (await fx.observer.waitForRequests(1))[0];
    t.match(record, { status: 502, errorCode: 'upstream_reset' }, 'recorded as the 502 it was');
  });

  t.test(`codec ${codec}: a head, then a reset in a later read, reaches an HTTP/1.1 app as the head, then a cut`, async (t) => {
    const pki = await makePki(TD);
    const hostile = await startHostileUpstream(pki, (c, id) => {
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, STATUS_200));
      setTimeout(() => c.write(rst(id, ERROR.PROTOCOL_ERROR)), 100);
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await hostile.close();
    });
    const seen = await new Promise<string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, path: '/echo', headers: { host: 'payments' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(`${res.statusCode}, ${res.complete ? 'complete' : 'incomplete'}`));
        res.on('error', () => resolve(`${res.statusCode}, cut`));
      });
      req.on('error', (err) => resolve(`no answer: ${err.message}`));
      req.end();
    });
    t.equal(seen, '200, cut', "the upstream's head, then the cut: never a whole answer");
    const record = (await fx.observer.waitForRequests(1))[0];
    t.match(record, { errorCode: 'upstream_reset' }, 'recorded as an upstream reset');
  });
}
