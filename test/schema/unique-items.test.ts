// uniqueItems on a body's array costs time in proportion to the array, not its square: Ajv's
// own check compares every pair of non-scalar items (20,000 distinct objects in 230 KB held the
// event loop ~17 s). Equality stays JSON Schema's: key order does not matter, 1 and 1.0 are one
// number, arrays compare item by item.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { checkJsonBody } from '../../src/schema/json-body.js';

const SPEC = `openapi: 3.0.3
info: {title: unique, version: '1'}
paths:
  /batches:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                items: {type: array, uniqueItems: true, items: {type: object}}
                tags: {type: array, uniqueItems: true}
      responses: {'200': {description: ok}}
`;

t.test('uniqueItems: linear in the array, with JSON Schema equality', async (t) => {
  const file = join(t.testdir(), 'spec.yaml');
  await writeFile(file, SPEC);
  const spec = await CompiledSpec.load(file);
  const validate = spec.check('POST', '/batches', '', { 'content-type': 'application/json' }, true).body!;
  const check = (value: unknown) => checkJsonBody(validate, Buffer.from(JSON.stringify(value)));

  const distinct = Array.from({ length: 20_000 }, (_, i) => ({ id: i, name: `n${i}` }));
  // CPU time, not the clock, and a bound far from both sides: 1,365 ms of the clock was seen in
  // a CI run on a slow, busy machine; a comparison of every pair (200 million) takes minutes
  const started = process.cpuUsage();
  t.equal(check({ items: distinct }), undefined, '20,000 distinct objects pass');
  const used = process.cpuUsage(started);
  const ms = (used.user + used.system) / 1000;
  t.ok(ms < 5_000, `in ${ms.toFixed(0)} ms of CPU`);

  t.match(check({ items: [...distinct.slice(0, 100), { name: 'n7', id: 7 }] }), { kind: 'body', message: /^body\/items: must NOT have duplicate items \(items ## 7 and 100 are identical\)/ }, 'an object equal but for key order is a duplicate');
  t.match(check({ tags: [1, 'a', 1.0] }), { message: /^body\/tags: must NOT have duplicate items/ }, '1 and 1.0 are the same number');
  t.match(check({ tags: [[1, [2]], [1, [2]]] }), { message: /duplicate items/ }, 'equal nested arrays');
  t.equal(check({ tags: [[1, 2], [2, 1], '1', 1, null, 'null', { a: 1 }, { a: '1' }] }), undefined, 'order inside arrays, types and strings still tell items apart');
});
