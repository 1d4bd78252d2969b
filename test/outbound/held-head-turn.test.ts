// The outbound holds an HTTP/1.1 answer's head until the first byte of its body, so both leave in
// one write (forward-http1.ts), but never past the event-loop turn that brought it
// (held-heads.ts): an upstream that sends its head and then waits (Server-Sent Events, a long
// poll) has its head reach the app at once, as a direct call would, on both codecs. The body
// then follows, and a head that came with its body arrives with it. The upstream is raw frames
// over mutual TLS, so the test decides when each frame leaves.

import t from 'tap';
import http from 'node:http';
import { startHostileUpstream, type HostileConnection } from '../helpers/hostile-upstream.js';
import { makePki, startOutbound, TD } from '../helpers/outbound-fixture.js';
import { FLAG, frame, FRAME, headerBlock } from '../helpers/raw-h2.js';

interface Answer {
  readonly status: number;
  readonly type: string | undefined;
  readonly body: Promise<string>;
}

/** A GET through the outbound: resolves with the head as soon as the app has it, the body later. */
function get(port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/events', headers: { host: 'payments' }, agent: false }, (res) => {
      const body = new Promise<string>((done) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => done(text));
        res.on('error', (err) => done(`cut: ${err.message}`));
      });
      resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body });
    });
    req.on('error', reject);
    // a bound on the failure, not a wait: with the fix the head comes in milliseconds; without
    // it, never (the upstream sends no body until the app has the head)
    req.setTimeout(4_000, () => req.destroy(new Error('no head within 4 s')));
    req.end();
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: a head with no body yet reaches the app at once; the body follows`, async (t) => {
    const pki = await makePki(TD);
    let stream: { c: HostileConnection; id: number } | undefined;
    const upstream = await startHostileUpstream(pki, (c, id) => {
      stream = { c, id };
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '200'], ['content-type', 'text/event-stream']])));
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    // the upstream sends nothing more until the app has the head: without the turn's release
    // the head waits for a body that waits for it
    const answer = await get(fx.port);
    t.equal(answer.status, 200, "the upstream's status, before any body byte");
    t.equal(answer.type, 'text/event-stream', 'with its fields');
    t.ok(stream, 'the upstream holds the stream open');
    stream!.c.write(frame(FRAME.DATA, FLAG.END_STREAM, stream!.id, Buffer.from('data: one\n\n')));
    t.equal(await answer.body, 'data: one\n\n', 'the event follows on the same answer, whole');
    const [record] = await fx.observer.waitForRequests(1);
    t.equal(record?.errorCode, undefined, 'recorded without an error');
    t.equal(record?.status, 200, 'recorded as a 200');
  });

  t.test(`codec ${codec}: a head that comes with its body arrives with it`, async (t) => {
    const pki = await makePki(TD);
    const upstream = await startHostileUpstream(pki, (c, id) =>
      c.write(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '201'], ['content-length', '2']])), frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('ok'))])),
    );
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const answer = await get(fx.port);
    t.equal(answer.status, 201);
    t.equal(await answer.body, 'ok');
  });
}
