// A request whose retry fails while the app's upload is still coming: the upstream answers the
// first attempt 503 (Retry-After: 1), and during that wait it goes away, so the retry finds no
// one and the app is answered 503 before its body has ended. The rest of the upload is then
// read and dropped (forward-http1-upload.ts discardUpload for HTTP/1.1, keepCompleteAnswer for
// h2c), so the app's connection serves its next request: on HTTP/1.1 the same keep-alive socket,
// on h2c the same session. Without it the next request would wait behind an unread body (or the
// connection be cut as stalled). Both codecs, both app protocols.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import { answerText, makePki, startOutbound, startUpstream, TD, waitUntil } from '../helpers/outbound-fixture.js';
import { freePort } from '../helpers/process.js';

const FIRST = Buffer.alloc(20_000, 'f');
const REST = Buffer.alloc(60_000, 'r');

/** The first stream of `payments` answered 503 with Retry-After: 1, without reading its body. */
function refuseWithRetryAfter() {
  const seen = { streams: 0, answered503: false };
  const handler = (stream: http2.ServerHttp2Stream) => {
    seen.streams += 1;
    stream.on('error', () => {});
    stream.respond({ ':status': 503, 'retry-after': '1' });
    stream.end();
    seen.answered503 = true;
  };
  return { seen, handler };
}

/** `orders`: answers 200 with the number of body bytes it read. */
function countBody(stream: http2.ServerHttp2Stream): void {
  let n = 0;
  stream.on('data', (c: Buffer) => (n += c.length));
  stream.on('end', () => {
    stream.respond({ ':status': 200 });
    stream.end(`read ${n}`);
  });
}

/** `p`, or a failure naming `what` after 5 s (a stream held behind flow control would wait for ever). */
function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within 5 s`)), 5000)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

interface Answer {
  status: number;
  text: string;
}

/** HTTP/1.1 over one keep-alive socket: the unfinished PUT, then a GET on the same socket. */
async function http1Case(port: number, payments: { seen: { answered503: boolean } }, close: () => Promise<void>, fxStreams: () => number | undefined): Promise<{ first: Answer; second: Answer; sameSocket: boolean }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    let firstSocket: Socket | undefined;
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/stock', agent, headers: { host: 'payments', 'transfer-encoding': 'chunked' } });
    req.on('socket', (s) => (firstSocket = s));
    const sent = new Promise<void>((resolve) => req.on('finish', () => resolve()));
    const first = new Promise<Answer>((resolve, reject) => {
      req.on('response', (res) => {
        // answered before the body's end: the rest follows now, as an app streaming its upload would
        req.end(REST);
        answerText(res).then(resolve, reject);
      });
      req.on('error', reject);
    });
    req.write(FIRST);
    await waitUntil(() => payments.seen.answered503 && fxStreams() === 0, 'the first attempt answered 503 and let go', 5000);
    await close();
    const firstAnswer = await within(first, 'the answer to the unfinished upload');
    await sent;
    const second = await new Promise<{ answer: Answer; socket: Socket | undefined }>((resolve, reject) => {
      const r = http.request({ host: '127.0.0.1', port, method: 'GET', path: '/next', agent, headers: { host: 'orders' } }, (res) => {
        answerText(res).then((answer) => resolve({ answer, socket: r.socket ?? undefined }), reject);
      });
      r.on('error', reject);
      r.setTimeout(5000, () => r.destroy(new Error('the next request on the socket got no answer in 5 s')));
      r.end();
    });
    return { first: firstAnswer, second: second.answer, sameSocket: second.socket === firstSocket };
  } finally {
    agent.destroy();
  }
}

/** h2c over one session: the unfinished PUT, then a GET on the same session. */
async function h2cCase(port: number, payments: { seen: { answered503: boolean } }, close: () => Promise<void>, fxStreams: () => number | undefined): Promise<{ first: Answer; second: Answer; sameSocket: boolean; uploadClosedCleanly: boolean }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    const stream = session.request({ ':method': 'PUT', ':path': '/stock', ':authority': 'payments' });
    let status = 0;
    let text = '';
    const first = new Promise<Answer>((resolve, reject) => {
      stream.setEncoding('utf8');
      stream.on('response', (head) => {
        status = Number(head[':status']);
        stream.end(REST);
      });
      stream.on('data', (c: string) => (text += c));
      stream.on('end', () => resolve({ status, text }));
      stream.on('error', reject);
    });
    const closed = new Promise<boolean>((resolve) => stream.on('close', () => resolve(stream.rstCode === http2.constants.NGHTTP2_NO_ERROR)));
    stream.write(FIRST);
    await waitUntil(() => payments.seen.answered503 && fxStreams() === 0, 'the first attempt answered 503 and let go', 5000);
    await close();
    const firstAnswer = await within(first, 'the answer to the unfinished upload');
    const uploadClosedCleanly = await within(closed, 'the end of the upload stream (its rest read by the outbound)');
    const next = session.request({ ':method': 'GET', ':path': '/next', ':authority': 'orders' });
    next.end();
    const second = await new Promise<Answer>((resolve, reject) => {
      let s = 0;
      let body = '';
      next.setEncoding('utf8');
      next.on('response', (head) => (s = Number(head[':status'])));
      next.on('data', (c: string) => (body += c));
      next.on('end', () => resolve({ status: s, text: body }));
      next.on('error', reject);
      next.setTimeout(5000, () => next.close(http2.constants.NGHTTP2_CANCEL));
    });
    return { first: firstAnswer, second, sameSocket: !session.closed && !session.destroyed, uploadClosedCleanly };
  } finally {
    session.destroy();
  }
}

for (const codec of ['meshcar', 'node'] as const) {
  for (const app of ['HTTP/1.1', 'h2c'] as const) {
    t.test(`${codec} codec, ${app} app: a retry that fails while the upload is coming answers 503, and the connection serves the next request`, async (t) => {
      const pki = await makePki(TD);
      const payments = refuseWithRetryAfter();
      // on a port below the ephemeral range: once closed, it must refuse, and a server of a test
      // beside this one listening on port 0 took a freed ephemeral port in a clean-clone run
      const paymentsUp = await startUpstream(pki, { handler: payments.handler, port: await freePort() });
      const ordersUp = await startUpstream(pki, { handler: countBody });
      const fx = await startOutbound(
        pki,
        [
          { name: 'payments', endpoints: [`127.0.0.1:${paymentsUp.port}`] },
          { name: 'orders', endpoints: [`127.0.0.1:${ordersUp.port}`] },
        ],
        { codec },
      );
      let paymentsClosed = false;
      const closePayments = async () => {
        if (paymentsClosed) return;
        paymentsClosed = true;
        await paymentsUp.close();
      };
      t.teardown(async () => {
        await fx.close();
        await closePayments();
        await ordersUp.close();
      });
      const streams = () => fx.observer.streams.get('payments');
      const result = app === 'h2c' ? await h2cCase(fx.port, payments, closePayments, streams) : await http1Case(fx.port, payments, closePayments, streams);
      t.equal(result.first.status, 503, `the retry found no upstream: ${result.first.text}`);
      t.equal(payments.seen.streams, 1, 'the upstream saw only the first attempt');
      t.equal(result.second.status, 200, `the next request on the connection was answered: ${result.second.text}`);
      t.equal(result.second.text, 'read 0');
      t.ok(result.sameSocket, 'on the same connection');
      if ('uploadClosedCleanly' in result) t.ok(result.uploadClosedCleanly, 'the upload stream closed without a reset (its body read to the end)');
    });
  }
}
