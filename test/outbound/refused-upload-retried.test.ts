// A request its upstream refused unprocessed (RST_STREAM REFUSED_STREAM) while the app's upload
// was still coming got 503 and was never sent again: a retry needed the body whole first. It is
// retried now, as Envoy's router does: the new stream gets the body as far as it had gone, and the
// rest as the app sends it. The upstream's app reads the whole body once, in order. Both app
// protocols (a chunked HTTP/1.1 POST, an h2c POST), both codecs. The refusal is a real Node
// HTTP/2 server's (stream.close(REFUSED_STREAM) on the first stream). And the app's body waits
// for the retry's stream: an upload the old stream held back by its flow control kept flowing
// while the retry waited (review), into the copy only, and past bufferLimit into nothing, so
// the upstream read a body without its start and answered 200.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { answerText, makePki, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';

const FIRST = 'the first part of the order;';
const REST = 'and the rest of it, sent after the refusal';

/** Refuses the first stream unprocessed; answers the others 200 with the body it read. */
function refuseFirst() {
  const seen = { streams: 0, bodies: [] as string[] };
  const handler = (stream: http2.ServerHttp2Stream) => {
    seen.streams += 1;
    if (seen.streams === 1) {
      // Node emits the refusal as the stream's error on this side too
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => {
      seen.bodies.push(body);
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`read ${body.length} bytes`);
    });
  };
  return { seen, handler };
}

/** A chunked POST from an HTTP/1.1 app: its first part, then (`rest()`) the rest and its end. */
function http1Upload(port: number): { rest(): void; answer: Promise<{ status: number; text: string }> } {
  let req!: http.ClientRequest;
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/orders', headers: { host: 'payments', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      answerText(res).then(resolve, reject);
    });
    req.on('error', reject);
    req.write(FIRST);
  });
  return { rest: () => req.end(REST), answer };
}

/** The same from an h2c app. */
function h2cUpload(session: http2.ClientHttp2Session): { rest(): void; answer: Promise<{ status: number; text: string }> } {
  const stream = session.request({ ':method': 'POST', ':path': '/orders', ':authority': 'payments', 'content-type': 'text/plain' });
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    let status = 0;
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (head) => (status = Number(head[':status'])));
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ status, text }));
    stream.on('error', reject);
  });
  stream.write(FIRST);
  return { rest: () => stream.end(REST), answer };
}

for (const codec of ['meshcar', 'node'] as const) {
  for (const app of ['HTTP/1.1', 'h2c'] as const) {
    t.test(`${codec} codec, ${app} app: an upload refused unprocessed before its end is sent again, whole`, async (t) => {
      const pki = await makePki(TD);
      const { seen, handler } = refuseFirst();
      const upstream = await startUpstream(pki, { handler });
      const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
      const session = app === 'h2c' ? http2.connect(`http://127.0.0.1:${fx.port}`) : undefined;
      t.teardown(async () => {
        session?.destroy();
        await fx.close();
        await upstream.close();
      });
      const upload = session ? h2cUpload(session) : http1Upload(fx.port);
      // the retry's stream is open, the app's body not ended: the rest must follow on it
      await waitUntil(() => seen.streams === 2, 'the retry reached the upstream', 5000);
      upload.rest();
      const answer = await upload.answer;
      t.equal(answer.status, 200, `answered by the retry: ${answer.text}`);
      t.same(seen.bodies, [FIRST + REST], 'the upstream read the whole body once, in order');
      t.equal(answer.text, `read ${FIRST.length + REST.length} bytes`);
      t.equal(seen.streams, 2, 'one refusal, one retry');
    });
  }
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an upload held back by the upstream's flow control waits for the retry, and nothing of it is lost`, async (t) => {
    const pki = await makePki(TD);
    const [a, b, end] = [Buffer.alloc(40_000, 'a'), Buffer.alloc(40_000, 'b'), Buffer.from('the end')];
    const seen = { streams: 0, answered503: false, bodies: [] as number[] };
    // an 8 KiB stream window the first stream never reads: the outbound's write of the upload
    // waits for a drain; then 503 with Retry-After: 1, the wait the second part comes in
    const upstream = await startUpstream(pki, {
      settings: { initialWindowSize: 8192 },
      handler: (stream) => {
        seen.streams += 1;
        stream.on('error', () => {});
        if (seen.streams === 1) {
          setTimeout(() => {
            stream.respond({ ':status': 503, 'retry-after': '1' });
            stream.end();
            seen.answered503 = true;
          }, 200);
          return;
        }
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          seen.bodies.push(Buffer.concat(chunks).length);
          if (stream.destroyed) return; // the outbound gave it up
          stream.respond({ ':status': 200 });
          stream.end();
        });
      },
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const req = http.request({ host: '127.0.0.1', port: fx.port, method: 'PUT', path: '/stock', agent: false, headers: { host: 'payments', 'transfer-encoding': 'chunked' } });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    req.write(a);
    // the first attempt's stream let go (the outbound counts it closed): the retry waits out
    // Retry-After, and this part comes meanwhile
    await waitUntil(() => seen.answered503 && fx.observer.streams.get('payments') === 0, 'the first stream let go', 5000);
    req.write(b);
    await waitUntil(() => seen.streams === 2, 'the retry reached the upstream', 5000);
    req.end(end);
    t.equal(await status, 200, 'answered by the retry');
    t.same(seen.bodies, [a.length + b.length + end.length], 'the retry carried the whole body');
  });
}
