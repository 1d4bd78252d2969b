// The upstream's response head as an HTTP/1.1 app receives it through the outbound, on both
// codecs: the head goes from the decoded HTTP/2 list to node:http as a list (no object in
// between), so each field is checked on the wire (rawHeaders), not through a client that
// would hide a repeat. The upstream is meshcar's own HTTP/2 codec as a server, since Node's
// core http2 will not send a single-valued field twice: repeats kept (Set-Cookie apart),
// single-valued fields once, first value (two equal Content-Lengths are a parse error to an
// HTTP/1.1 app, and were relayed joined as "2, 2"), hop-by-hop fields and pseudo-headers left
// out, and the remote sidecar's x-meshcar-error passed on. (Node's codec, nghttp2, refuses a
// repeated content-length with a stream error itself: that one is checked on meshcar's codec.)

import t from 'tap';
import tls from 'node:tls';
import { H2Connection, type H2Stream } from '../../src/h2/index.js';
import { MTLS_SERVER_OPTIONS } from '../../src/identity/tls-contexts.js';
import { makePki, request, startOutbound, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';

const HEAD = [
  ':status', '200',
  'content-type', 'text/plain',
  'content-type', 'text/html',
  'content-length', '2',
  'content-length', '2',
  'set-cookie', 'a=1',
  'set-cookie', 'b=2',
  'x-multi', 'one',
  'x-multi', 'two',
  'proxy-authenticate', 'Basic',
  'x-meshcar-error', 'upstream_timeout',
];

/** Every value of `name` in a raw head, in order (names compared lower-case). */
function valuesOf(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`the upstream's head, field by field (codec ${codec})`, async (t) => {
    const pki = await makePki(TD);
    const leaf = await pki.issue(UPSTREAM_ID);
    const server = tls.createServer({ key: leaf.privateKeyPem, cert: leaf.chainPem, ca: pki.bundlePem, ALPNProtocols: ['h2'], ...MTLS_SERVER_OPTIONS });
    server.on('secureConnection', (socket) => {
      const conn = new H2Connection(socket, { role: 'server' });
      conn.on('error', () => {});
      conn.on('stream', (stream: H2Stream) => {
        stream.on('error', () => {});
        stream.resume();
        // nghttp2 (Node's core http2 client) refuses a repeated content-length outright
        stream.respond(codec === 'meshcar' ? HEAD : HEAD.filter((_, i) => i < 8 || i > 9));
        stream.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${port}`] }], { codec });
    t.teardown(async () => {
      await fx.close();
      await new Promise((resolve) => server.close(resolve));
    });

    const res = await request(fx.port, { path: '/head' });
    t.equal(res.status, 200);
    t.equal(res.text, 'ok', 'the body arrives, framed by the one Content-Length');
    const raw = res.rawHeaders;
    t.same(valuesOf(raw, 'content-length'), ['2'], 'a repeated Content-Length is sent once');
    t.same(valuesOf(raw, 'content-type'), ['text/plain'], 'a single-valued field keeps its first value, once');
    t.same(valuesOf(raw, 'set-cookie'), ['a=1', 'b=2'], 'each Set-Cookie kept apart');
    t.same(valuesOf(raw, 'x-multi').join(', '), 'one, two', 'other repeats kept, in order');
    t.same(valuesOf(raw, 'proxy-authenticate'), [], 'hop-by-hop fields are left out');
    t.notOk(raw.some((name, i) => i % 2 === 0 && name.startsWith(':')), 'no pseudo-header reaches HTTP/1.1');
    t.same(valuesOf(raw, 'x-meshcar-error'), ['upstream_timeout'], "the remote sidecar's x-meshcar-error is passed on");
  });
}
