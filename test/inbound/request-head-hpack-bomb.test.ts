// A caller holding a valid SVID sends a request head that is an HPACK bomb: one 4 KB field put
// in the dynamic table, then referenced by one byte per field, 200 times: 800 KB decoded from
// about 4 KB on the wire, far over inbound.limits.maxHeaderListSize (16 KiB). The meshcar
// codec refuses it while decoding (431). Node's codec holds a head to 256 fields but, on a
// stream opened before the caller acknowledged our SETTINGS, not in bytes: the inbound wrote
// the whole 800 KB head to the app. Now the stream is reset (ENHANCE_YOUR_CALM, as Node resets
// a head over its limits), nothing reaches the app, and the connection serves the next request.
// Raw frames over real mTLS; the app is a raw TCP server counting the bytes it is sent.

import t from 'tap';
import net, { type AddressInfo } from 'node:net';
import { startInbound } from '../helpers/inbound-fixture.js';
import { connectRawH2, errorCodeOf, FLAG, frame, FRAME, headerBlock, requestHeaders, statusOf } from '../helpers/raw-h2.js';

const GET: Array<readonly [string, string]> = [[':method', 'GET'], [':scheme', 'https'], [':path', '/orders'], [':authority', 'localhost']];
/** x-bomb: 3,968 bytes of 'a', literal with incremental indexing (dynamic index 62), no Huffman. */
const INSERT = Buffer.concat([Buffer.from([0x40, 0x06]), Buffer.from('x-bomb'), Buffer.from([0x7f, 0x81, 0x1e]), Buffer.alloc(3968, 0x61)]);
const REFERENCE = 0xbe; // indexed field, dynamic index 62
const ENHANCE_YOUR_CALM = 0xb;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: a request head that decodes to 800 KB never reaches the app`, async (t) => {
    let appBytes = 0;
    const app = net.createServer((socket) =>
      socket.on('data', (chunk: Buffer) => {
        appBytes += chunk.length;
        if (chunk.includes('\r\n\r\n')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
      }),
    );
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const fx = await startInbound({ codec, externalApp: { protocol: 'http', port: (app.address() as AddressInfo).port } });
    t.teardown(async () => {
      await fx.close();
      await new Promise((resolve) => app.close(resolve));
    });
    // its HEADERS go before it could acknowledge our SETTINGS
    const raw = await connectRawH2(fx.port, await fx.tlsOptions(), { ackSettings: true });
    t.teardown(() => raw.destroy());
    raw.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, Buffer.concat([headerBlock(GET), INSERT, Buffer.alloc(200, REFERENCE)])));
    const refusal = await raw.waitFor((f) => f.streamId === 1 && (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM), 'the answer to the bomb');
    if (codec === 'node') t.equal(errorCodeOf(refusal), ENHANCE_YOUR_CALM, 'reset ENHANCE_YOUR_CALM');
    else t.equal(refusal.type, FRAME.HEADERS, 'answered (431) by the codec');
    t.equal(appBytes, 0, 'nothing written to the app');
    raw.write(requestHeaders(3, GET));
    const next = await raw.waitFor((f) => f.streamId === 3 && f.type === FRAME.HEADERS, 'the next answer');
    t.equal(statusOf(next), 200, 'the next request on the connection is answered');
    t.ok(appBytes < 1000, `the app got the next request alone (${appBytes} bytes)`);
  });
}
