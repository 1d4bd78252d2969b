// An h2c app's stream whose answer is whole while its upload is not: the outbound reads and
// drops the rest, and closes it with RST_STREAM(NO_ERROR) once the upload has been quiet for the
// idle timeout (1 s with no upstream; RFC 9113 §8.1). Before, our own error answer (a 404 no_route to an upload, a 408
// for an upload that stalled) or an upstream's early complete answer followed by its reset left
// the app's stream half-closed: no record, inFlight held, the drain waiting out its budget and
// the connection never idle, until the app closed its connection. Both codecs, Node's HTTP/2
// client as the app, a real upstream.

import t from 'tap';
import http2 from 'node:http2';
import { makePki, startOutbound, startUpstream, UPSTREAM_ID, waitUntil } from '../helpers/outbound-fixture.js';

interface Outcome {
  status: number;
  rstCode: number | undefined;
}

/** A POST whose upload sends `first part` and nothing more; resolves once the stream closes (or rejects after 5 s). */
function unfinishedUpload(session: http2.ClientHttp2Session, authority: string, path = '/upload'): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': path, ':authority': authority }, { endStream: false });
    let status = 0;
    const timer = setTimeout(() => reject(new Error(`${authority}: the stream was not closed within 5 s (status ${status})`)), 5_000);
    stream.on('error', () => {});
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ status, rstCode: stream.rstCode });
    });
    stream.resume();
    stream.write('first part');
  });
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const pki = await makePki();
    const upstream = await startUpstream(pki, {
      handler: (stream, headers) => {
        stream.on('error', () => {});
        if (headers[':path'] !== '/early') return; // reads nothing, answers nothing: the upload stalls
        // an early complete answer, then a NO_ERROR reset (as Node's server and our inbound do)
        stream.respond({ ':status': 413 });
        stream.end('too big', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
      },
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`], identity: UPSTREAM_ID, idleTimeoutMs: 500 }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    session.on('error', () => {});
    t.teardown(() => session.destroy());
    const NO_ERROR = http2.constants.NGHTTP2_NO_ERROR;

    t.same(await unfinishedUpload(session, 'nosuch'), { status: 404, rstCode: NO_ERROR }, 'no route: 404, then the stream is closed with NO_ERROR');
    t.same(await unfinishedUpload(session, 'payments'), { status: 408, rstCode: NO_ERROR }, 'a stalled upload: 408 at the idle timeout, then closed');

    const early = await unfinishedUpload(session, 'payments', '/early');
    t.same(early, { status: 413, rstCode: NO_ERROR }, "the upstream's early 413, then closed");

    await waitUntil(() => fx.observer.requests.length === 3, 'three records');
    t.same(
      fx.observer.requests.map((r) => [r.status, r.errorCode ?? null]).sort(),
      [[404, 'no_route'], [408, 'request_timeout'], [413, null]].sort(),
      'each recorded with its answer, while the app keeps its connection',
    );
    t.equal(fx.outbound.inFlight, 0, 'nothing in flight');
  });
}
