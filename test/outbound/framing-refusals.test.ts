// Request framings an app's HTTP/1.1 request may not use, each sent alone on a fresh connection
// to the outbound listener (the classes of request smuggling: CL.TE, TE.CL, TE.TE, duplicate or
// odd lengths, folded or spaced fields, bare line ends, bad chunks, trailers that would change
// the framing): each is 400 bad_request with our JSON body naming Node's parser error, the
// connection then closed, and no request reaches the upstream whole (one whose chunked body
// breaks after its head went is cancelled there). The list is the one the README gives.
// Raw TCP, since no well-behaved client sends these.

import t from 'tap';
import { startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { parseResponse, rawTcpUntilClosed } from '../helpers/raw-http.js';

const H = 'Host: payments\r\n';
const CHUNKED = `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`;
const CASES: Array<[string, string, RegExp]> = [
  ['Content-Length beside Transfer-Encoding', `POST /echo HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /HPE_INVALID_TRANSFER_ENCODING|HPE_UNEXPECTED_CONTENT_LENGTH/],
  ['two equal Content-Lengths', `POST /echo HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, /HPE_UNEXPECTED_CONTENT_LENGTH/],
  ['two different Content-Lengths', `POST /echo HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, /HPE_UNEXPECTED_CONTENT_LENGTH/],
  ['a listed Content-Length', `POST /echo HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, /HPE_INVALID_CONTENT_LENGTH/],
  ['a signed Content-Length', `POST /echo HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc`, /HPE_INVALID_CONTENT_LENGTH/],
  ['chunked twice', `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /HPE_INVALID_TRANSFER_ENCODING/],
  ['chunked, identity', `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /HPE_INVALID_TRANSFER_ENCODING/],
  ['an obsolete line folding', `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /HPE_/],
  ['whitespace before the colon', `POST /echo HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, /HPE_INVALID_HEADER_TOKEN/],
  ['a bare CR', `GET /echo HTTP/1.1\r${H}\r\n`, /HPE_/],
  ['a bare LF', `GET /echo HTTP/1.1\r\n${H}X-A: b\n\r\n`, /HPE_/],
  ['a NUL in a field', `GET /echo HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, /HPE_INVALID_HEADER_TOKEN/],
  ['a DEL in a field', `GET /echo HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, /HPE_INVALID_HEADER_TOKEN/],
  ['a chunk size in 0x', `${CHUNKED}0x3\r\nabc\r\n0\r\n\r\n`, /HPE_INVALID_CHUNK_SIZE/],
  ['a chunk size that overflows', `${CHUNKED}10000000000000003\r\nabc\r\n0\r\n\r\n`, /HPE_INVALID_CHUNK_SIZE/],
  ['a space after a chunk size', `${CHUNKED}3 \r\nabc\r\n0\r\n\r\n`, /HPE_INVALID_CHUNK_SIZE/],
  ['chunk extensions over 16 KiB', `${CHUNKED}3;${'a'.repeat(17_000)}\r\nabc\r\n0\r\n\r\n`, /HPE_CHUNK_EXTENSIONS_OVERFLOW/],
  ['a chunk line ended by LF', `${CHUNKED}3;x\nabc\r\n0\r\n\r\n`, /HPE_CR_EXPECTED/],
  ['a Content-Length trailer', `${CHUNKED}3\r\nabc\r\n0\r\nContent-Length: 99\r\n\r\n`, /HPE_INVALID_CONTENT_LENGTH/],
  ['a Transfer-Encoding trailer', `${CHUNKED}3\r\nabc\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n`, /HPE_INVALID_TRANSFER_ENCODING/],
];

t.test('framings that could be read two ways: 400 bad_request, closed, nothing upstream whole', async (t) => {
  // the upstream records each request whose stream ended with END_STREAM, i.e. arrived whole
  // (Node's stream also ends when the peer resets it: rstCode and aborted tell the two apart)
  const whole: string[] = [];
  const { fx } = await startOutboundToUpstream(t, {
    handler: (stream, headers) => {
      stream.on('error', () => {});
      stream.resume();
      stream.on('end', () => {
        if (stream.rstCode === undefined && !stream.aborted) whole.push(`${String(headers[':path'])} ${String(headers['content-length'] ?? '')}`);
        if (!stream.destroyed) stream.respond({ ':status': 200 }, { endStream: true });
      });
    },
  });
  const smuggled = `GET /echo?smuggled HTTP/1.1\r\n${H}\r\n`;
  for (const [what, bytes, code] of CASES) {
    // a request behind each: answered, it would mean the first was read some other way
    const { text, closed } = await rawTcpUntilClosed(fx.port, bytes + smuggled, 3_000);
    const res = parseResponse(Buffer.from(text, 'latin1'), true);
    t.equal(res?.status, 400, `${what}: 400`);
    t.equal(res?.headers['x-meshcar-error'], 'bad_request', `${what}: bad_request`);
    t.match(res === undefined ? undefined : JSON.parse(res.body).message, code, `${what}: the parser's error named`);
    t.ok(closed, `${what}: the connection closed`);
    t.equal(text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, `${what}: one answer only`);
  }
  t.same(whole, [], 'no request reached the upstream whole');
});
