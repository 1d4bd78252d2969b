// A GOAWAY's last stream id splits the requests in flight on a session: those above it were
// never processed (RFC 9113 §6.8) and are sent again whatever their method, body and all; those
// at or below it may have been, and a POST among them is not. On both codecs, and whether the
// GOAWAY says NO_ERROR or an error (Node's core http2 then destroys the whole session, every
// stream with the GOAWAY's code: nothing on the stream itself tells the two kinds apart, not
// even a REFUSED_STREAM code).

import t from 'tap';
import http2 from 'node:http2';
import { appIdentity, defaultHandler, makePki, RecordingObserver, request, silent, startUpstream, TD, UPSTREAM_ID, type Http1Result } from '../helpers/outbound-fixture.js';
import { waitFor } from '../helpers/mesh.js';
import { parseEndpoint, type Endpoint } from '../../src/config/address.js';
import { createOutbound } from '../../src/outbound/index.js';
import { RETRY_DEFAULTS } from '../../src/outbound/retry.js';

class RetryObserver extends RecordingObserver {
  readonly retries: string[] = [];
  retryAttempted(_upstream: string, reason: string, outcome: string): void {
    this.retries.push(`${reason}:${outcome}`);
  }
}

const { NGHTTP2_NO_ERROR, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM } = http2.constants;

for (const codec of ['meshcar', 'node'] as const) {
  // REFUSED_STREAM as the GOAWAY's code: Node gives it to every stream as its rstCode, the
  // processed ones too, which read as a stream refusal: the POST the upstream took was sent again
  for (const code of [NGHTTP2_NO_ERROR, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM]) {
    t.test(`${codec} codec, GOAWAY code ${code}: a POST above the last stream id is sent again; one at or below it is not`, async (t) => {
      const pki = await makePki(TD);
      // the first POST (`/taken`) is held: processed. The second one's arrival makes the upstream
      // send GOAWAY naming the first as its last stream (Node's server cannot name 0). Later
      // streams (on a new session) are echoed, and their bodies noted.
      let taken: http2.ServerHttp2Stream | undefined;
      let goawaySent = false;
      const bodies: string[] = [];
      const up = await startUpstream(pki, {
        handler: (stream, headers, flags) => {
          stream.on('error', () => {});
          if (headers[':path'] === '/taken' && taken === undefined) {
            taken = stream;
            stream.resume();
            return;
          }
          if (!goawaySent && taken !== undefined) {
            goawaySent = true;
            stream.session?.goaway(code, taken.id);
            return;
          }
          let body = '';
          stream.on('data', (c: Buffer) => (body += c));
          stream.on('end', () => bodies.push(body));
          defaultHandler(stream, headers, flags);
        },
      });
      t.teardown(() => up.close());
      const observer = new RetryObserver();
      const outbound = createOutbound({
        config: {
          listen: { host: '127.0.0.1', port: 0 },
          upstreams: [{ name: 'payments', endpoints: [parseEndpoint(`127.0.0.1:${up.port}`) as Endpoint], identity: UPSTREAM_ID, timeoutMs: 5000, routes: [], retries: { ...RETRY_DEFAULTS, backoffBaseMs: 1, backoffMaxMs: 5 } }],
        },
        identity: await appIdentity(pki),
        logger: silent,
        observer,
        codec,
      });
      const { port } = await outbound.listen();
      t.teardown(() => outbound.close());

      const first = request(port, { method: 'POST', path: '/taken', body: 'order-1' }).catch((err: Error) => err);
      await waitFor(async () => taken !== undefined, 5000, 'the first POST reached the upstream');
      const second = await request(port, { method: 'POST', path: '/echo', body: 'order-2' });
      t.equal(second.status, 200, `the POST above the last stream id was answered (${second.text})`);
      t.same(bodies, ['order-2'], 'sent again, with its whole body');
      // the POST the upstream took: answered on its session while that lives (an error GOAWAY
      // ends it at once with Node's core http2, not with ours), else 502; never sent again
      const open = taken !== undefined && !taken.closed;
      if (open) taken?.respond({ ':status': 200 }, { endStream: true });
      t.equal((await first as Http1Result).status, open ? 200 : 502, 'the POST the upstream took: answered, or 502');
      t.equal(up.requests, 3, 'two POSTs, one of them sent twice');
      t.same(observer.retries, ['reset:success'], 'one retry, which succeeded');
    });
  }
}
