// An h2c app that resets its upload with RST_STREAM(NO_ERROR) once our answer is complete (RFC
// 9113 §8.1 lets it stop sending without error) has broken its body off: the upstream, which
// answered early and reads on, must see a reset (CANCEL), never END_STREAM after the part it
// got. Node ends the app's stream like a finished body when it closes so, and that end was
// passed upstream: a clean END_STREAM after 16,000 bytes of an upload that had no end. Raw
// frames from the app (Node's own client sends END_STREAM before its reset); both codecs.

import t from 'tap';
import { startH2cAppToUpstream } from '../helpers/outbound-fixture.js';
import { FLAG, FRAME, connectRawH2c, frame, requestHeaders } from '../helpers/raw-h2.js';
import { waitFor } from '../helpers/mesh.js';

const NGHTTP2_CANCEL = 8;

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an upload the app resets with NO_ERROR after a complete answer reaches the upstream reset, not ended`, async (t) => {
    const seen = { got: 0, rstCode: undefined as number | undefined };
    const { fx } = await startH2cAppToUpstream(t, codec, {
      handler: (stream) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 202 }, { endStream: true });
        stream.on('data', (chunk: Buffer) => (seen.got += chunk.length));
        stream.on('close', () => (seen.rstCode = stream.rstCode));
      },
    });
    const raw = await connectRawH2c(fx.port, { ackSettings: true });
    t.teardown(() => raw.destroy());
    raw.write(requestHeaders(1, [[':method', 'POST'], [':scheme', 'http'], [':path', '/ingest'], [':authority', 'payments']], false));
    raw.write(frame(FRAME.DATA, 0, 1, Buffer.alloc(16_000, 97)));
    await raw.waitFor((f) => f.type === FRAME.HEADERS && f.streamId === 1 && (f.flags & FLAG.END_STREAM) !== 0, 'our complete answer');
    await waitFor(async () => seen.got === 16_000, 5_000, 'the upstream to have what was sent');
    raw.write(frame(FRAME.RST_STREAM, 0, 1, Buffer.alloc(4))); // NO_ERROR
    await waitFor(async () => seen.rstCode !== undefined, 5_000, "the upstream's stream to close");
    t.equal(seen.rstCode, NGHTTP2_CANCEL, 'the upstream stream is cancelled, not ended as a whole upload');
    const [record] = await fx.observer.waitForRequests(1);
    t.equal(record?.status, 202, "recorded with the upstream's status");
  });
}
