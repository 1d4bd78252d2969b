// A JSON body that names one key twice in one object is refused. The check read it as
// JSON.parse does (the last value counts) while some parsers read the first (Go's jsonparser
// and gojay, rapidjson's FindMember): {"qty": 1, "qty": 1000} was validated as one value and
// could be served as the other. Over a real inbound, enforce (400) and shadow (recorded), and
// the scan itself: keys compared decoded, per object, strings and arrays aside
// (src/schema/duplicate-keys.ts).

import t from 'tap';
import { resolve } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { duplicateKey } from '../../src/schema/duplicate-keys.js';
import { h1Request, startInbound } from '../helpers/inbound-fixture.js';

const SPEC = resolve('config/orders.openapi.yaml');

t.test('the first key named twice in one object, decoded', async (t) => {
  const found: Array<[string, string | undefined]> = [
    ['{"a":1,"a":2}', 'a'],
    ['{"x":{"a":1,"b":2},"y":{"a":1,"a":1}}', 'a'],
    ['{"q\\u0074y":1,"qty":2}', 'qty'],
    ['{"\\u00e9":1,"é":2}', 'é'],
    ['{"__proto__":1,"__proto__":2}', '__proto__'],
    ['{"a":1,"b":{"a":2}}', undefined],
    ['[{"a":1},{"a":2}]', undefined],
    ['{"a":"\\"a\\":1,","b":["a","a"],"c":{"a":{}}}', undefined],
    ['{"a":{},"b":[],"a ":1}', undefined],
  ];
  for (const [json, key] of found) t.equal(duplicateKey(Buffer.from(json)), key, `${json}: ${key ?? 'none'}`);
});

t.test('over the inbound: refused in enforce, recorded in shadow', async (t) => {
  for (const mode of ['enforce', 'shadow'] as const) {
    const f = await startInbound();
    t.teardown(() => f.close());
    f.inbound.setSchema(await loadGuard({ spec: SPEC, mode, maxBodySize: 1024 }));
    const tls = await f.tlsOptions();
    const post = (body: string) => h1Request(f.port, tls, { method: 'POST', path: '/orders', headers: { 'content-type': 'application/json', 'idempotency-key': 'idem-0001' }, body });
    t.equal((await post('{"item":"book","qty":1}')).status, 200, `${mode}: an order passes`);
    const res = await post('{"item":"book","qty":1000,"qty":1}'); // the last is valid, a first-key parser reads 1000
    t.equal(res.status, mode === 'enforce' ? 400 : 200, `${mode}: the same key twice is ${mode === 'enforce' ? 'refused' : 'forwarded'}`);
    const message = 'body: the key "qty" is given twice in one object (parsers disagree on which value counts)';
    if (mode === 'enforce') t.equal(JSON.parse(res.body).message, message);
    const records = await f.observer.waitForRequests(2);
    t.same(records[1]?.schema?.violation, { kind: 'body', message }, `${mode}: recorded`);
  }
});
