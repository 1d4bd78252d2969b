// A gRPC answer the outbound cuts after its head, before the upstream's trailers: the gRPC
// client (grpc-js, h2c to the outbound port) gets the sidecar's status in trailers with
// x-meshcar-error: DEADLINE_EXCEEDED when the upstream went quiet past idleTimeout,
// UNAVAILABLE when it broke off. Whatever code the upstream's stream ended with (CANCEL, or a
// GOAWAY ENHANCE_YOUR_CALM with the connection) never reaches the client as CANCELLED or
// RESOURCE_EXHAUSTED; a message cut in its middle still fails the call. Runs on the default
// codec; codec-node-grpc-cut.test.ts re-runs it on the node codec.

import t from 'tap';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { appIdentity, envTestCodec, makePki, RecordingObserver, silent, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import { createOutbound } from '../../src/outbound/index.js';

const raw = (b: Buffer) => b;
const SERVICE = {
  watch: { path: '/meshcar.test.W/Watch', requestStream: false, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
} as unknown as grpc.ServiceDefinition;

/** One gRPC message (uncompressed, length-prefixed). */
function message(payload: string): Buffer {
  const body = Buffer.from(payload);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

t.test('gRPC answers cut after their head end with the sidecar status in trailers', async (t) => {
  const pki = await makePki(TD);
  // the upstream answers the head and a first message, then does what the path says
  const upstream = await startUpstream(pki, {
    handler: (stream, headers) => {
      stream.on('error', () => {});
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      const how = String(headers['x-test-how']);
      // once the first message is written out
      stream.write(message('first'), () => {
        if (how === 'quiet') return; // the idle timeout cuts it
        if (how === 'cancel') stream.close(NGHTTP2_CANCEL);
        else if (how === 'half-message') stream.write(message('second').subarray(0, 7), () => stream.close(NGHTTP2_CANCEL));
        else if (how === 'unread') stream.write(message('second'), () => stream.close(NGHTTP2_CANCEL));
        else if (how === 'calm') {
          stream.session?.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
          stream.session?.destroy();
        }
      });
    },
  });
  const outbound = createOutbound({
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      upstreams: [{ name: 'payments', endpoints: [parseEndpoint(`127.0.0.1:${upstream.port}`) as Endpoint], identity: UPSTREAM_ID, timeoutMs: 30_000, idleTimeoutMs: 300, routes: [] }],
    },
    identity: await appIdentity(pki),
    logger: silent,
    observer: new RecordingObserver(),
    ...(envTestCodec() ? { codec: envTestCodec() } : {}),
  });
  const bound = await outbound.listen();
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'W');
  const client = new Client(`127.0.0.1:${bound.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'payments' }) as grpc.Client & Record<string, (req: Buffer, md: grpc.Metadata) => grpc.ClientReadableStream<Buffer>>;
  t.teardown(async () => {
    client.close();
    await outbound.close();
    await upstream.close();
  });

  const watch = (how: string) =>
    new Promise<{ code: number; meshcarError: unknown; messages: number }>((resolve) => {
      const md = new grpc.Metadata();
      md.set('x-test-how', how);
      const call = client.watch!(Buffer.from('x'), md);
      let messages = 0;
      call.on('data', () => messages++);
      call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, meshcarError: err.metadata?.get('x-meshcar-error')[0], messages }));
      call.on('status', (s: grpc.StatusObject) => {
        if (s.code === grpc.status.OK) resolve({ code: 0, meshcarError: undefined, messages });
      });
    });

  const quiet = await watch('quiet');
  t.same(quiet, { code: grpc.status.DEADLINE_EXCEEDED, meshcarError: 'upstream_timeout', messages: 1 }, 'quiet past idleTimeout: DEADLINE_EXCEEDED, upstream_timeout');
  const cancelled = await watch('cancel');
  t.same(cancelled, { code: grpc.status.UNAVAILABLE, meshcarError: 'upstream_reset', messages: 1 }, 'the upstream reset it with CANCEL: UNAVAILABLE, not CANCELLED');
  const calm = await watch('calm');
  t.same(calm, { code: grpc.status.UNAVAILABLE, meshcarError: 'upstream_reset', messages: 1 }, 'GOAWAY ENHANCE_YOUR_CALM and the connection gone: UNAVAILABLE, not RESOURCE_EXHAUSTED');
  const half = await watch('half-message');
  t.not(half.code, grpc.status.OK, `a message cut in its middle fails the call (${half.code})`);
  t.equal(half.messages, 1, 'and is not delivered');

  // an app that reads nothing: its stream window (10 bytes: the first message) stays shut, the
  // rest of the answer and the trailers wait behind it; the cut stream is reset after a grace
  // period instead of being held open for ever
  const app = http2.connect(`http://127.0.0.1:${bound.port}`, { settings: { initialWindowSize: 10 } });
  t.teardown(() => app.destroy());
  const stream = app.request({ ':method': 'POST', ':path': '/meshcar.test.W/Watch', ':authority': 'payments', 'content-type': 'application/grpc', te: 'trailers', 'x-test-how': 'unread' });
  stream.on('error', () => {});
  stream.end(message('x'));
  const started = Date.now();
  const rstCode = await new Promise<number | undefined>((resolve, reject) => {
    stream.once('close', () => resolve(stream.rstCode));
    setTimeout(() => reject(new Error('the unread cut stream was never closed')), 15_000).unref();
  });
  t.equal(rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, `reset with INTERNAL_ERROR after ${Date.now() - started} ms`);
});
