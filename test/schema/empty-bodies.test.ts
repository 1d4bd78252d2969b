// A request body announced and then empty (chunked framing with no chunk, an HTTP/2 stream
// whose HEADERS lack END_STREAM and whose only DATA frame is empty and ends it, as Node's
// http2 client ends a POST, or `Content-Length: 00`) is no body, as `Content-Length: 0` is:
// an operation whose requestBody is optional passes it on, one that requires a body refuses it
// as missing. It was judged as JSON and refused, `body: is not valid JSON`, in enforce mode, and
// counted as that violation in shadow mode. Real mTLS callers on the inbound, an h2c app on the
// outbound (the same check: src/schema/json-body.ts checkSentBody).

import t from 'tap';
import http2 from 'node:http2';
import { once } from 'node:events';
import { join } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { h1Request, h2Connect, h2Request, startInbound } from '../helpers/inbound-fixture.js';
import { h2cRequest, makePki, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';

const SPEC = `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /notes:
    post:
      requestBody:
        required: false
        content:
          application/json: {schema: {type: object, required: [text], properties: {text: {type: string}}}}
      responses: {"200": {description: ok}}
  /things:
    post:
      requestBody:
        required: true
        content:
          application/json: {schema: {type: object}}
      responses: {"200": {description: ok}}
`;
const JSON_HEAD = { 'content-type': 'application/json' };
const MISSING = { kind: 'body', message: 'body: is required' };

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function specFile(t: Tap): Promise<string> {
  return join(t.testdir({ 'api.yaml': SPEC }), 'api.yaml');
}

/** An inbound on `codec` checking the spec in `mode`, and an HTTP/2 caller's session into it. */
async function checkingInbound(t: Tap, codec: 'meshcar' | 'node', mode: 'enforce' | 'shadow') {
  const g = await startInbound({ codec });
  t.teardown(() => g.close());
  g.inbound.setSchema(await loadGuard({ spec: await specFile(t), mode, maxBodySize: 1024 }));
  const session = await h2Connect(g.port, await g.tlsOptions());
  t.teardown(() => session.close());
  return { g, session };
}

/** An outbound enforcing the spec toward an mTLS upstream, and an h2c app session into it. */
async function enforcingOutbound(t: Tap) {
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  t.teardown(() => upstream.close());
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(() => fx.close());
  fx.outbound.setSchemas(new Map([['payments', await loadGuard({ spec: await specFile(t), mode: 'enforce', maxBodySize: 1024 })]]));
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  return { upstream, session };
}

for (const mode of ['enforce', 'shadow'] as const) {
  t.test(`inbound, ${mode}: an empty body is no body`, async (t) => {
    const f = await startInbound({});
    t.teardown(() => f.close());
    f.inbound.setSchema(await loadGuard({ spec: await specFile(t), mode, maxBodySize: 1024 }));
    const tls = await f.tlsOptions();
    const h1 = (path: string, framing: Record<string, string>) => h1Request(f.port, tls, { method: 'POST', path, headers: { ...JSON_HEAD, ...framing }, body: '' });
    const chunked = { 'transfer-encoding': 'chunked' };
    const zeros = { 'content-length': '00' };
    let records = 0;
    const violation = async () => (await f.observer.waitForRequests(++records)).at(-1)?.schema?.violation;

    for (const [what, framing] of [['chunked', chunked], ['Content-Length: 00', zeros]] as const) {
      const optional = await h1(`/notes`, framing);
      t.equal(optional.status, 200, `HTTP/1.1 ${what}, optional body: passed on`);
      t.equal(JSON.parse(optional.body).body, '', 'with no bytes');
      t.equal(await violation(), undefined, 'no violation');
      const required = await h1(`/things`, framing);
      t.equal(required.status, mode === 'enforce' ? 400 : 200, `HTTP/1.1 ${what}, required body: ${mode === 'enforce' ? 'refused' : 'passed on'}`);
      if (mode === 'enforce') t.equal(JSON.parse(required.body).message, 'body: is required');
      t.same(await violation(), MISSING, 'as missing, not as JSON');
    }
    for (const codec of ['meshcar', 'node'] as const) {
      const { g, session } = await checkingInbound(t, codec, mode);
      const optional = await h2Request(session, { ':method': 'POST', ':path': '/notes', ...JSON_HEAD }, '');
      t.equal(optional.status, 200, `HTTP/2 (${codec} codec), an empty DATA frame ends it, optional body: passed on`);
      const required = await h2Request(session, { ':method': 'POST', ':path': '/things', ...JSON_HEAD }, '');
      t.equal(required.status, mode === 'enforce' ? 400 : 200, `HTTP/2 (${codec} codec), required body`);
      const seen = await g.observer.waitForRequests(2);
      t.same(seen.map((r) => r.schema?.violation), [undefined, MISSING], 'recorded: none, then missing');
    }
  });
}

t.test('outbound, enforce: an h2c app whose POST ends with an empty DATA frame', async (t) => {
  const { upstream, session } = await enforcingOutbound(t);
  const optional = await h2cRequest(session, { ':method': 'POST', ':path': '/notes', ...JSON_HEAD }, '');
  t.equal(optional.status, 200, 'optional body: sent upstream');
  const required = await h2cRequest(session, { ':method': 'POST', ':path': '/things', ...JSON_HEAD }, '');
  t.same([required.status, required.headers['x-meshcar-error']], [400, 'schema_violation'], 'required body: refused as missing');
  t.equal(upstream.requests, 1, 'only the first went upstream');
});

// no Content-Type and no length: whether a byte comes is known only once the body ends, so an
// empty one passes where the body is optional, and one with bytes is refused then, 415 as
// before (a length that says bytes will come is refused from the head)
const NO_TYPE = { kind: 'content_type', message: 'content_type: no Content-Type is not accepted (send application/json)' };

for (const mode of ['enforce', 'shadow'] as const) {
  t.test(`inbound, ${mode}: no Content-Type, no length`, async (t) => {
    const refused = mode === 'enforce' ? 415 : 200;
    for (const codec of ['meshcar', 'node'] as const) {
      const { g, session } = await checkingInbound(t, codec, mode);
      const empty = await h2Request(session, { ':method': 'POST', ':path': '/notes' }, '');
      t.equal(empty.status, 200, `HTTP/2 (${codec} codec), ended by an empty DATA frame: passed on`);
      const bytes = await h2Request(session, { ':method': 'POST', ':path': '/notes' }, '{"text":"a"}');
      t.equal(bytes.status, refused, `HTTP/2 (${codec} codec), with bytes: ${mode === 'enforce' ? 'refused' : 'passed on'}`);
      const sized = await h2Request(session, { ':method': 'POST', ':path': '/notes', 'content-length': '12' }, '{"text":"a"}');
      t.equal(sized.status, refused, `HTTP/2 (${codec} codec), a length: from the head`);
      const seen = await g.observer.waitForRequests(3);
      t.same(seen.map((r) => r.schema?.violation), [undefined, NO_TYPE, NO_TYPE], 'recorded: none, then the missing type twice');
      if (mode === 'enforce') {
        // refused at its first byte, not once maxBodySize came or the upload ended
        const open = session.request({ ':method': 'POST', ':path': '/notes' });
        open.on('error', () => {});
        open.write('{');
        const [head] = (await once(open, 'response')) as [http2.IncomingHttpHeaders];
        t.equal(head[':status'], 415, `HTTP/2 (${codec} codec), a byte, the upload left open: refused at once`);
        open.destroy();
      }
    }
    const f = await startInbound({});
    t.teardown(() => f.close());
    f.inbound.setSchema(await loadGuard({ spec: await specFile(t), mode, maxBodySize: 1024 }));
    const tls = await f.tlsOptions();
    const chunked = (body: string) => h1Request(f.port, tls, { method: 'POST', path: '/notes', headers: { 'transfer-encoding': 'chunked' }, body });
    t.equal((await chunked('')).status, 200, 'HTTP/1.1 chunked with no chunk: passed on');
    const bytes = await chunked('{"text":"a"}');
    t.equal(bytes.status, refused, 'HTTP/1.1 chunked with bytes');
    if (mode === 'enforce') t.same(JSON.parse(bytes.body).message, NO_TYPE.message, 'named as the missing type');
    t.equal((await chunked('x'.repeat(4096))).status, refused, 'past maxBodySize too: the missing type, not 413');
    const seen = await f.observer.waitForRequests(3);
    t.same(seen.map((r) => r.schema?.violation), [undefined, NO_TYPE, NO_TYPE]);
  });
}

t.test('outbound, enforce: an h2c app\'s POST with no Content-Type', async (t) => {
  const { upstream, session } = await enforcingOutbound(t);
  const empty = await h2cRequest(session, { ':method': 'POST', ':path': '/notes' }, '');
  t.equal(empty.status, 200, 'empty: sent upstream');
  const bytes = await h2cRequest(session, { ':method': 'POST', ':path': '/notes' }, '{"text":"a"}');
  t.same([bytes.status, bytes.headers['x-meshcar-error']], [415, 'unsupported_media_type'], 'with bytes: refused as the missing type');
  const large = await h2cRequest(session, { ':method': 'POST', ':path': '/notes' }, 'x'.repeat(4096));
  t.same([large.status, large.headers['x-meshcar-error']], [415, 'unsupported_media_type'], 'past maxBodySize too: the missing type, not 413');
  // refused at its first byte, not once maxBodySize came or the upload ended
  const open = session.request({ ':authority': 'payments', ':method': 'POST', ':path': '/notes' });
  open.on('error', () => {});
  open.write('{');
  const [head] = (await once(open, 'response')) as [http2.IncomingHttpHeaders];
  t.equal(head[':status'], 415, 'a byte, the upload left open: refused at once');
  open.destroy();
  t.equal(upstream.requests, 1, 'only the empty one went upstream');
});
