// An upstream that answers in full and then resets the stream with RST_STREAM(NO_ERROR) (RFC
// 9113 §8.1: "stop sending your request, no error") has answered: the app gets the whole 200 and
// the exchange is no upstream_reset, on both codecs. Whole is: END_STREAM came before the reset,
// or every byte of the answer's Content-Length did (the reset overtook an END_STREAM queued
// behind it: what nghttp2 does to a server's own reset, e.g. meshcar's node-codec inbound before
// it stopped resetting complete requests; curl takes it as whole too). A body short of its
// Content-Length stays cut (cut-bodies.test.ts). The upstream is raw frames over mutual TLS.

import t from 'tap';
import http from 'node:http';
import { startHostileUpstream } from '../helpers/hostile-upstream.js';
import { makePki, startOutbound, TD } from '../helpers/outbound-fixture.js';
import { ERROR, FLAG, frame, FRAME, headerBlock } from '../helpers/raw-h2.js';

const noErrorReset = (id: number) => frame(FRAME.RST_STREAM, 0, id, Buffer.alloc(4, ERROR.NO_ERROR));

const ANSWERS = {
  'END_STREAM, then RST_STREAM(NO_ERROR)': (id: number) => [
    frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '200']])),
    frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('ok')),
    noErrorReset(id),
  ],
  'all its Content-Length, then RST_STREAM(NO_ERROR) before END_STREAM': (id: number) => [
    frame(FRAME.HEADERS, FLAG.END_HEADERS, id, headerBlock([[':status', '200'], ['content-length', '2']])),
    frame(FRAME.DATA, 0, id, Buffer.from('ok')),
    noErrorReset(id),
  ],
};

/** A GET through the outbound as the app sends it: how its answer ended. */
function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host: 'payments' }, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body}${res.complete ? ', complete' : ', incomplete'}`));
      res.on('error', (err) => resolve(`${res.statusCode} ${body}, cut (${err.message})`));
    });
    req.on('error', (err) => resolve(`error ${err.message}`));
    req.end();
  });
}

for (const codec of ['node', 'meshcar'] as const) {
  for (const [answer, frames] of Object.entries(ANSWERS)) {
    t.test(`codec ${codec}: ${answer} is relayed whole`, async (t) => {
      const pki = await makePki(TD);
      const upstream = await startHostileUpstream(pki, (c, id) => c.write(Buffer.concat(frames(id))));
      const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
      t.teardown(async () => {
        await fx.close();
        await upstream.close();
      });
      t.equal(await get(fx.port), '200 ok, complete', 'the app gets the whole answer');
      const [record] = await fx.observer.waitForRequests(1);
      t.equal(record?.errorCode, undefined, 'recorded without an error (no upstream_reset)');
      t.equal(fx.outbound.inFlight, 0, 'nothing left in flight');
    });
  }
}
