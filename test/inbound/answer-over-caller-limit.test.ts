// The inbound on either codec: the app's answer head or trailers over the caller's
// SETTINGS_MAX_HEADER_LIST_SIZE (65536, as every outbound advertises; the h2c app answers 70 KB
// of metadata, which HTTP/2 allows). The head never goes out: the caller gets the sidecar's own
// 502 bad_gateway naming both sizes (JSON body, or grpc-status for a gRPC caller), recorded as
// 502. Before, on meshcar the stream was reset INTERNAL_ERROR with no status and recorded as the
// app's 200 with bytesOut 0 and error "reset", and nothing said why; on node nghttp2 could not
// send the block and the caller's stream hung. Trailers after a head that went out
// can only be reset: recorded as trailers_too_large (no grpc-status: the caller never got one),
// said at warn. The connection serves on.

import t from 'tap';
import http2 from 'node:http2';
import { h2Connect, h2Request, startInbound, TD } from '../helpers/inbound-fixture.js';
import { GRPC_MESSAGE, startBigMetadataApp } from '../helpers/big-metadata-app.js';
import { memoryLogger } from '../helpers/ca.js';

const CALLER_LIMIT = 65536;

for (const codec of ['meshcar', 'node'] as const) t.test(`${codec} codec: an answer head or trailers over the caller's header list size: 502 bad_gateway naming why, trailers_too_large; the connection serves on`, async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startInbound({ codec, externalApp: { protocol: 'h2c', port: (await startBigMetadataApp(t)).port }, logger: memoryLogger(lines) });
  t.teardown(() => fx.close());
  // a caller of its own per codec: the warn lines are once per caller and kind
  const session = await h2Connect(fx.port, { ...(await fx.tlsOptions(`spiffe://${TD}/svc/frontend-${codec}`)), settings: { maxHeaderListSize: CALLER_LIMIT } } as http2.SecureClientSessionOptions);
  t.teardown(() => session.destroy());

  // a plain HTTP/2 caller: the JSON error answer
  const plain = await h2Request(session, { ':method': 'GET', ':path': '/head', 'x-request-id': 'plain-head' });
  t.equal(plain.status, 502, 'the sidecar answers 502, not a reset without a status');
  t.equal(plain.headers['x-meshcar-error'], 'bad_gateway');
  const body = JSON.parse(plain.body.toString()) as { error: string; message: string };
  t.equal(body.error, 'bad_gateway');
  t.match(body.message, /its head of \d+ bytes is over the caller's limit of 65536 \(the caller's SETTINGS_MAX_HEADER_LIST_SIZE\)/, 'naming both sizes');
  t.equal(plain.headers['x-bigh'], undefined, "none of the app's head");

  // a gRPC caller: the trailers-only answer the inbound gives its other errors
  const grpc = await h2Request(session, { ':method': 'POST', ':path': '/head', 'content-type': 'application/grpc', te: 'trailers', 'x-request-id': 'grpc-head' }, GRPC_MESSAGE);
  t.equal(grpc.status, 200);
  t.equal(grpc.headers['x-meshcar-error'], 'bad_gateway');
  t.equal(grpc.headers['grpc-status'], '14', 'UNAVAILABLE, as for every bad_gateway');
  t.match(decodeURIComponent(String(grpc.headers['grpc-message'])), /over the caller's limit of 65536/);

  // trailers after the head: the stream is reset, the head was the app's
  const trailed = await h2Request(session, { ':method': 'POST', ':path': '/trailers', 'content-type': 'application/grpc', te: 'trailers', 'x-request-id': 'grpc-trailers' }, GRPC_MESSAGE);
  t.equal(trailed.status, 200, "the app's head went out");
  t.equal(trailed.trailers, undefined, 'no trailers');
  t.equal(trailed.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, 'the stream is reset');

  const ok = await h2Request(session, { ':method': 'POST', ':path': '/ok', 'content-type': 'application/grpc', te: 'trailers' }, GRPC_MESSAGE);
  t.equal(ok.trailers?.['grpc-status'], '0', 'the same connection serves the next call');

  const records = await fx.observer.waitForRequests(4);
  const byId = (id: string) => records.find((r) => r.requestId === id);
  t.match(byId('plain-head'), { status: 502, errorCode: 'bad_gateway' }, 'recorded as the 502 the caller got');
  t.ok((byId('plain-head')?.bytesOut ?? 0) > 0, 'with the bytes of the answer sent');
  t.match(byId('grpc-head'), { status: 502, errorCode: 'bad_gateway', grpcStatus: 14 });
  t.match(byId('grpc-trailers'), { status: 200, errorCode: 'trailers_too_large', grpcStatus: null }, 'the reset says why, and no grpc-status the caller never got');

  const warned = lines.filter((l) => l.level === 40).map((l) => String(l.msg));
  t.match(warned.find((m) => m.includes('502 bad_gateway instead')), /its head of \d+ bytes is over the caller's limit of 65536/, 'a warn line for the head');
  t.match(warned.find((m) => m.includes('reset after the head')), /its trailers of \d+ bytes are over the caller's limit of 65536/, 'a warn line for the trailers');
  t.equal(warned.length, 2, 'one per caller and kind (the second head is within the 10 s)');
});

/** An inbound on `codec` before an app answering /N with N fields more (and a Date or not), and a caller that takes 300 fields (Node's client takes 128 by default; the outbound's, 256). */
async function manyFieldsApp(t: Tap.Test, codec: 'meshcar' | 'node', sendDate: boolean) {
  const fx = await startInbound({
    codec,
    app: {
      protocol: 'http',
      handler: (req, res) => {
        res.sendDate = sendDate;
        const head: string[] = ['content-length', '2'];
        for (let i = 0; i < Number(req.url?.slice(1)); i++) head.push(`x-f${i}`, 'v');
        res.writeHead(200, head).end('ok');
      },
    },
  });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, { ...(await fx.tlsOptions()), maxHeaderListPairs: 300 } as http2.SecureClientSessionOptions);
  t.teardown(() => session.destroy());
  return { fx, session };
}

// a head within the bytes but over the fields a calling sidecar's client takes (256, :status
// included): the outbound answered its app 502 while this side recorded the app's 200
for (const codec of ['meshcar', 'node'] as const) t.test(`${codec} codec: an answer head over 256 fields: 502 bad_gateway here, recorded as such`, async (t) => {
  const { fx, session } = await manyFieldsApp(t, codec, true);
  const most = await h2Request(session, { ':method': 'GET', ':path': '/253' });
  t.equal(most.status, 200, '253 of the app\'s fields (256 with :status, content-length and date): through');
  const over = await h2Request(session, { ':method': 'GET', ':path': '/254', 'x-request-id': 'many' });
  t.equal(over.status, 502, '254 of them (257): 502');
  t.match(JSON.parse(over.body.toString()), { error: 'bad_gateway', message: /its head of 257 fields is over the 256 a calling sidecar takes/ });
  const records = await fx.observer.waitForRequests(2);
  t.match(records.find((r) => r.requestId === 'many'), { status: 502, errorCode: 'bad_gateway' }, 'recorded as the 502 the caller got');

  // an app that sends no Date (gRPC servers often do not): Node's codec adds one as it sends
  const { session: caller } = await manyFieldsApp(t, codec, false);
  const answer = await h2Request(caller, { ':method': 'GET', ':path': '/254' });
  const fields = answer.rawHeaders.length / 2;
  t.ok(answer.status === 502 || fields <= 256, `no Date from the app, 256 fields with :status: ${answer.status}, ${fields} fields went out`);
  t.equal(answer.status, codec === 'node' ? 502 : 200, codec === 'node' ? "Node's codec would add a date: the 257th, refused" : 'the meshcar codec adds none: through');
});

// and its bytes: Node's date (65 bytes as RFC 7541 counts them) took a head measured at
// 65,479 bytes to 65,544 on the wire, over the caller's 65,536: its outbound answered 502 (a
// little larger, nghttp2 reset the stream with no status) while this side recorded 200
for (const codec of ['meshcar', 'node'] as const) t.test(`${codec} codec: the date Node adds counts toward the caller's header list size`, async (t) => {
  const fx = await startInbound({
    codec,
    app: {
      protocol: 'h2c',
      handler: (stream, headers) => {
        stream.on('error', () => {});
        stream.respond({ ':status': 200, 'x-pad': 'p'.repeat(Number(String(headers[':path']).slice(1))) }, { sendDate: false } as http2.ServerStreamResponseOptions);
        stream.end('ok');
      },
    },
  });
  t.teardown(() => fx.close());
  const session = await h2Connect(fx.port, { ...(await fx.tlsOptions()), settings: { maxHeaderListSize: CALLER_LIMIT } } as http2.SecureClientSessionOptions);
  t.teardown(() => session.destroy());
  const answer = await h2Request(session, { ':method': 'GET', ':path': '/65400' });
  const wire = answer.rawHeaders.reduce((sum, value) => sum + value.length, 0) + 16 * answer.rawHeaders.length;
  t.ok(answer.status === 502 || wire <= CALLER_LIMIT, `no head over the caller's limit goes out (${answer.status}, ${wire} bytes)`);
  t.equal(answer.status, codec === 'node' ? 502 : 200, codec === 'node' ? "Node's codec: refused, its date counted" : 'the meshcar codec adds none: through');
});
