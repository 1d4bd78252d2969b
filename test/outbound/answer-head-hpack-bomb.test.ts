// An upstream holding a valid mesh certificate answers with an HPACK bomb: one 4 KB field put
// in the dynamic table, then referenced by one byte per field, 200 times: 800 KB of answer head
// from about 4 KB on the wire. The meshcar codec's client holds an answer head to 64 KiB
// decoded (a stream error, 502 bad_gateway); Node's client holds an answer to 256 fields but
// not in bytes, and on http2.codec node the outbound relayed the whole 800 KB head to the app,
// 200 times its size on the wire, per answer. Now both refuse it: the app gets 502, and the
// next request on the same session is answered. Trailers that are such a bomb (after a head
// and a first byte of body) cut the answer instead of reaching the app (before: 800 KB of
// chunked trailers on node).

import t from 'tap';
import net from 'node:net';
import { makePki, request, startOutbound, TD } from '../helpers/outbound-fixture.js';
import { startHostileUpstream } from '../helpers/hostile-upstream.js';
import { FLAG, frame, FRAME } from '../helpers/raw-h2.js';

const STATUS_200 = 0x88; // HPACK: :status 200, static index 8
/** x-bomb: 3,968 bytes of 'a', literal with incremental indexing (dynamic index 62), no Huffman. */
const INSERT = Buffer.concat([Buffer.from([0x40, 0x06]), Buffer.from('x-bomb'), Buffer.from([0x7f, 0x81, 0x1e]), Buffer.alloc(3968, 0x61)]);
const REFERENCE = 0xbe; // indexed field, dynamic index 62
const REFERENCES = 200;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an answer head that decodes to 800 KB is refused with 502, not relayed`, async (t) => {
    const pki = await makePki(TD);
    // the first answer is the bomb; the others are plain 200s on the same session
    let answered = 0;
    const hostile = await startHostileUpstream(pki, (c, id) => {
      const block = answered++ === 0 ? Buffer.concat([Buffer.from([STATUS_200]), INSERT, Buffer.alloc(REFERENCES, REFERENCE)]) : Buffer.from([STATUS_200]);
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block));
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await hostile.close();
    });
    // the helper's HTTP/1.1 parser takes up to 16 KiB of head: a relayed bomb fails it (0)
    const first = await request(fx.port, { path: '/orders' }).then((r) => r.status, () => 0);
    t.equal(first, 502, `the bomb is answered 502 (${first === 0 ? 'an 800 KB head relayed' : first})`);
    t.equal((await request(fx.port, { path: '/orders' })).status, 200, 'the next answer is relayed');
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: trailers that decode to 800 KB cut the answer, never reach the app`, async (t) => {
    const pki = await makePki(TD);
    const hostile = await startHostileUpstream(pki, (c, id) => {
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, Buffer.from([STATUS_200])));
      c.write(frame(FRAME.DATA, 0, id, Buffer.from('x')));
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, Buffer.concat([INSERT, Buffer.alloc(REFERENCES, REFERENCE)])));
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${hostile.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await hostile.close();
    });
    // raw bytes: what the app is sent, whatever it is
    const app = net.connect(fx.port, '127.0.0.1');
    t.teardown(() => app.destroy());
    app.write('GET /orders HTTP/1.1\r\nHost: payments\r\nConnection: close\r\nTE: trailers\r\n\r\n');
    let received = '';
    app.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await new Promise((resolve) => {
      app.once('close', resolve);
      setTimeout(resolve, 2000).unref();
    });
    t.ok(received.length < 16 * 1024, `the app was sent ${received.length} bytes`);
    t.notOk(received.includes('x-bomb'), 'no trailer of the bomb reached it');
    t.ok(app.destroyed || received.startsWith('HTTP/1.1 502'), 'the answer is cut (connection closed) or a 502');
  });
}
