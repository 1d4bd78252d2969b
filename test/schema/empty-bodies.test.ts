// A request body announced and then empty (chunked framing with no chunk, an HTTP/2 stream
// whose HEADERS lack END_STREAM and whose only DATA frame is empty and ends it, as Node's
// http2 client ends a POST, or `Content-Length: 00`) is no body, as `Content-Length: 0` is:
// an operation whose requestBody is optional passes it on, one that requires a body refuses it
// as missing. It was judged as JSON and refused, `body: is not valid JSON`, in enforce mode, and
// counted as that violation in shadow mode. Real mTLS callers on the inbound, an h2c app on the
// outbound (the same check: src/schema/json-body.ts checkSentBody).

import t from 'tap';
import http2 from 'node:http2';
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
      const g = await startInbound({ codec });
      t.teardown(() => g.close());
      g.inbound.setSchema(await loadGuard({ spec: await specFile(t), mode, maxBodySize: 1024 }));
      const session = await h2Connect(g.port, await g.tlsOptions());
      t.teardown(() => session.close());
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
  const pki = await makePki(TD);
  const upstream = await startUpstream(pki);
  t.teardown(() => upstream.close());
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }]);
  t.teardown(() => fx.close());
  fx.outbound.setSchemas(new Map([['payments', await loadGuard({ spec: await specFile(t), mode: 'enforce', maxBodySize: 1024 })]]));
  const session = http2.connect(`http://127.0.0.1:${fx.port}`);
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const optional = await h2cRequest(session, { ':method': 'POST', ':path': '/notes', ...JSON_HEAD }, '');
  t.equal(optional.status, 200, 'optional body: sent upstream');
  const required = await h2cRequest(session, { ':method': 'POST', ':path': '/things', ...JSON_HEAD }, '');
  t.same([required.status, required.headers['x-meshcar-error']], [400, 'schema_violation'], 'required body: refused as missing');
  t.equal(upstream.requests, 1, 'only the first went upstream');
});
