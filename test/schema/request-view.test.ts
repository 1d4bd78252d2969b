// A property marked readOnly and listed in `required` is required in responses only (OpenAPI
// 3.0, readOnly): a request body without the server-assigned id was refused (`body/id: is
// required`). Its own object, a nested one, one from a $ref and one from allOf; the schema
// shared with a response (dereferenced into one object at load) is left as written. Over a real
// inbound in enforce mode (src/schema/request-view.ts).

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { startSpecInbound } from '../helpers/spec-inbound.js';
import { CompiledSpec } from '../../src/schema/spec.js';

const SPEC = `openapi: 3.0.3
info: {title: items, version: '1'}
paths:
  /items:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [id, item]
              additionalProperties: false
              properties:
                id: {type: integer, readOnly: true}
                item: {type: string}
                owner: {$ref: '#/components/schemas/Owner'}
                tags: {type: array, items: {$ref: '#/components/schemas/Tag'}}
      responses:
        '201':
          description: created
          content:
            application/json: {schema: {$ref: '#/components/schemas/Owner'}}
components:
  schemas:
    Owner:
      type: object
      required: [ownerId, name]
      properties:
        ownerId: {type: string, readOnly: true}
        name: {type: string}
    Tag:
      allOf:
        - {$ref: '#/components/schemas/Stamped'}
        - type: object
          required: [label, created]
          properties: {label: {type: string}}
    Stamped:
      type: object
      properties:
        created: {allOf: [{$ref: '#/components/schemas/When'}]}
    When: {type: string, readOnly: true}
`;

t.test('readOnly properties are not required in a request body; the others still are', async (t) => {
  const { call } = await startSpecInbound(t, SPEC, { maxBodySize: 1 << 16, fileName: 'items.yaml' });
  const post = (body: unknown) => call('POST', '/items', { 'content-type': 'application/json' }, JSON.stringify(body));
  for (const body of [{ item: 'a' }, { id: 1, item: 'a' }, { item: 'a', owner: { name: 'n' } }, { item: 'a', tags: [{ label: 'x' }] }]) {
    t.equal((await post(body)).status, 200, `${JSON.stringify(body)} passes`);
  }
  const refused: Array<[unknown, string]> = [
    [{ id: 1 }, 'body/item: is required'],
    [{ item: 'a', owner: {} }, 'body/owner/name: is required'],
    [{ item: 'a', tags: [{}] }, 'body/tags/0/label: is required'],
    [{ id: 'x', item: 'a' }, 'body/id: must be integer'],
  ];
  for (const [body, message] of refused) {
    const res = await post(body);
    t.equal(res.status, 400, `${JSON.stringify(body)} is refused`);
    t.equal(res.message, message);
  }
});

t.test('the loaded document keeps its schemas as written', async (t) => {
  const file = `${t.testdir()}/items.yaml`;
  await writeFile(file, SPEC);
  const spec = await CompiledSpec.load(file);
  const post = (spec.document.paths as Record<string, Record<string, { requestBody: { content: Record<string, { schema: { required: string[]; properties: { owner: { required: string[] } } } }> } }>>)['/items']?.post;
  const schema = post?.requestBody.content['application/json']?.schema;
  t.same(schema?.required, ['id', 'item']);
  t.same(schema?.properties.owner.required, ['ownerId', 'name'], 'the $ref-shared Owner, used by the response too');
});
