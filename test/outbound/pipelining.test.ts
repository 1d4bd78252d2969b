// HTTP/1.1 pipelined behind a request the outbound has not answered yet: whatever comes next
// is never answered first. An Upgrade or CONNECT there closes the connection once the earlier
// request is answered, its answer first (a 101 written first would put the earlier answer inside
// the tunnel's byte stream; closing at once lost an answer the upstream had given); an unparseable request
// there gets no refusal (it would be read as the earlier request's answer): the earlier
// answer goes out, then the connection closes. Raw TCP, since only hand-made clients pipeline.

import t from 'tap';
import { request, startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { rawTcpUntilClosed } from '../helpers/raw-http.js';

/** Writes `bytes` on a fresh connection; resolves with everything received until the outbound closes it. */
const untilClosed = async (port: number, bytes: string): Promise<string> => (await rawTcpUntilClosed(port, bytes)).text;

const SLOW = 'GET /slow/300 HTTP/1.1\r\nHost: payments\r\n\r\n';

t.test('requests pipelined behind an unanswered one on the outbound', async (t) => {
  const { fx } = await startOutboundToUpstream(t);

  for (const [label, second] of [
    ['Upgrade', 'GET /ws HTTP/1.1\r\nHost: payments\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n'],
    ['CONNECT', 'CONNECT example:443 HTTP/1.1\r\nHost: example:443\r\n\r\n'],
  ] as const) {
    const text = await untilClosed(fx.port, SLOW + second);
    t.match(text, /^HTTP\/1\.1 200 OK\r\n/, `${label}: the earlier request gets its answer`);
    t.match(text, /\r\nconnection: close\r\n/i, `${label}: which says the connection closes`);
    // the body is the whole rest: JSON that parses, nothing written after it for the second request
    t.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).path, '/slow/300', `${label}: all of it, then the connection closes, nothing written for the ${label}`);
  }

  const text = await untilClosed(fx.port, `${SLOW}GET /x HTTP/1.1\r\nHost: payments\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`);
  t.match(text, /^HTTP\/1\.1 200 OK\r\n/, 'an unparseable request behind it: the earlier request gets its own answer');
  t.match(text, /"path":"\/slow\/300"/, 'its body too');
  t.notMatch(text, /HTTP\/1\.1 400|bad_request/, 'no refusal written after it');

  t.equal((await request(fx.port)).status, 200, 'still serving');
  await fx.observer.waitForRequests(4);
  t.equal(fx.outbound.inFlight, 0, 'nothing left in flight');
});
