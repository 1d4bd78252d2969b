// Expect at the edges of HTTP/1.1 (RFC 9110 §10.1.1, §15.2):
// - an HTTP/1.0 request with `Expect: 100-continue`: the expectation is ignored; no 1xx may
//   go to an HTTP/1.0 client, so no 100 is relayed or sent after the grace, and the field is
//   not passed on (an upstream that sends a 100 anyway is not heard);
// - `Expect: 100-continue, foo` (Node's server fires checkContinue for any Expect naming
//   100-continue): refused 417 expectation_failed as any other unknown expectation, not half-met.
// Both HTTP/2 codecs toward the upstream.

import t from 'tap';
import net from 'node:net';
import { echo, makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { parseResponse, rawTcpRequest } from '../helpers/raw-http.js';

/** All the bytes the outbound sends until it closes the connection (HTTP/1.0: after its answer). */
function untilClosed(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(bytes));
    socket.setEncoding('latin1');
    const timer = setTimeout(() => socket.destroy(new Error(`not closed within 5 s: ${JSON.stringify(out)}`)), 5000);
    socket.on('data', (c: string) => (out += c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}`, async (t) => {
    const pki = await makePki(TD);
    const expects: Array<string | undefined> = [];
    // an upstream that answers an Expect with a 100 of its own, then echoes
    const upstream = await startUpstream(pki, {
      handler: (stream, headers) => {
        expects.push(headers.expect as string | undefined);
        if (headers.expect !== undefined) stream.additionalHeaders({ ':status': 100 });
        echo(stream, headers);
      },
    });
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await upstream.close();
    });

    const old = await untilClosed(fx.port, 'POST /echo HTTP/1.0\r\nHost: payments\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc');
    t.notMatch(old, /^HTTP\/1\.1 100/, 'HTTP/1.0: no 100 Continue');
    const answer = parseResponse(Buffer.from(old, 'latin1'), true);
    t.equal(answer?.status, 200, 'HTTP/1.0: answered');
    t.equal(JSON.parse(answer?.body ?? '{}').body, 'abc', 'HTTP/1.0: the body went upstream');
    t.equal(expects.at(-1), undefined, 'HTTP/1.0: the ignored expectation is not passed on');

    // HTTP/1.1 and a plain 100-continue: the upstream's 100 is still relayed
    const relayed = await untilClosed(fx.port, 'POST /echo HTTP/1.1\r\nHost: payments\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
    t.match(relayed, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/, 'HTTP/1.1: the 100 is relayed');
    t.equal(expects.at(-1), '100-continue');

    const before = upstream.requests;
    const compound = await rawTcpRequest(fx.port, 'POST /echo HTTP/1.1\r\nHost: payments\r\nExpect: 100-continue, foo\r\nContent-Length: 3\r\n\r\nabc');
    t.equal(compound.status, 417, '100-continue, foo: 417');
    t.equal(compound.headers['x-meshcar-error'], 'expectation_failed');
    t.match(JSON.parse(compound.body), { error: 'expectation_failed', message: /100-continue, foo/ }, 'our JSON body');
    t.equal(compound.headers.connection, 'close', 'the unread body goes with the connection');
    t.equal(upstream.requests, before, 'nothing went upstream');
    // counted as any refusal the sidecar answers (it was in no metric and no access line)
    const unknown = await rawTcpRequest(fx.port, 'POST /echo HTTP/1.1\r\nHost: payments\r\nExpect: foo\r\nx-request-id: expect-foo\r\nContent-Length: 3\r\n\r\nabc');
    t.equal(unknown.status, 417, 'Expect: foo: 417');
    await fx.observer.waitForRequests(4);
    const refusals = fx.observer.requests.filter((r) => r.status === 417);
    t.equal(refusals.length, 2, 'both 417s recorded');
    t.match(refusals.find((r) => r.requestId === 'expect-foo'), { peer: 'payments', path: '/echo', errorCode: 'expectation_failed', bytesOut: unknown.body.length }, 'as our refusal to the upstream it named, with its body bytes');

    t.equal((await request(fx.port, { method: 'POST', path: '/echo', body: 'x' })).status, 200, 'an ordinary request still goes');
  });
}
