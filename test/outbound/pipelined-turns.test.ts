// HTTP/1.1 requests an app pipelines to the outbound go upstream one at a time, each after the
// answer before it. Node's server writes answers in order but drops those queued behind an
// answer that ends the connection; a pipelined request forwarded meanwhile reached the far app
// and was acted on, and the app that sent it never had an answer (seen: a POST pipelined behind
// an Expect: 100-continue request whose body came at once, answered without a 100, which Node
// closes; and behind a request refused 417). Raw TCP toward the outbound, a real inbound over
// mutual TLS, and a raw far app that answers each head at once and records what it got.

import t from 'tap';
import { startPairToApp } from '../helpers/pair-to-app.js';
import { rawTcpUntilClosed, startEagerApp } from '../helpers/raw-http.js';

/** What the outbound writes on a new connection given `bytes`, until it closes it (or 3 s pass). */
const exchange = (port: number, bytes: string) => rawTcpUntilClosed(port, bytes, 3000);

const answers = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
const B = 'POST /b HTTP/1.1\r\nHost: orders\r\nContent-Length: 0\r\n\r\n';

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`codec ${codec}: pipelined requests wait for the answer before them`, async (t) => {
    const seen: string[] = [];
    const app = await startEagerApp(seen);
    const { outbound } = await startPairToApp(t, app.port, codec);
    t.teardown(() => app.close()); // after the pair's own

    // Expect: 100-continue with the body sent at once: the far app answers before any 100, so
    // Node ends the connection with that answer; the POST behind it must never be sent
    seen.length = 0;
    let got = await exchange(outbound.port, `POST /a HTTP/1.1\r\nHost: orders\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nHELLO${B}`);
    t.same(answers(got.text), ['HTTP/1.1 200'], 'Expect then POST: one answer');
    t.ok(got.closed, 'and the connection closed');
    t.same(seen, ['POST /a'], 'the far app got only the request that was answered');

    // an expectation refused (417, the connection closes): the POST behind it is never sent
    seen.length = 0;
    got = await exchange(outbound.port, `POST /a HTTP/1.1\r\nHost: orders\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\nHELLO${B}`);
    t.same(answers(got.text), ['HTTP/1.1 417'], '417 then POST: one answer');
    t.same(seen, [], 'the far app got nothing');

    // a request behind, its chunked body broken (a chunk size that is not hex) in the same
    // write: the earlier answer goes out, then the broken one's 400, then the connection closes
    // (it was cut at once, the GET's answer lost and the GET recorded as its app leaving: a review)
    seen.length = 0;
    got = await exchange(outbound.port, `GET /a HTTP/1.1\r\nHost: orders\r\n\r\nPOST /bad HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`);
    t.same(answers(got.text), ['HTTP/1.1 200', 'HTTP/1.1 400'], 'GET then a broken chunked POST: the GET answered, then the POST refused in its turn');
    t.match(got.text, /"error":"bad_request"/);
    t.ok(got.closed, 'then the connection closed');
    t.same(seen, ['GET /a'], 'the far app never got the broken POST');

    // ordinary pipelining still answers everything, in order, each after the one before
    seen.length = 0;
    got = await exchange(outbound.port, `GET /one HTTP/1.1\r\nHost: orders\r\n\r\nPOST /two HTTP/1.1\r\nHost: orders\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n`);
    t.same(answers(got.text), ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200'], 'three pipelined requests, three answers');
    t.same(seen, ['GET /one', 'POST /two', 'GET /three'], 'the far app got each once, in order');
  });
}
