// `format: int64` held to -2^63..2^63-1 for the number as sent (src/schema/int64-range.ts):
// ajv-formats only tests integer-ness, and 99999999999999999999 passed. Doubles cannot tell
// 9223372036854775807 (in range) from 9223372036854775808 (out): both parse as 2^63, so the
// check reads the digits. In bodies and parameters, over a real inbound in enforce mode.

import t from 'tap';
import { startSpecInbound } from '../helpers/spec-inbound.js';
import { numbersSent } from '../../src/schema/int64-range.js';

const SPEC = `openapi: 3.0.3
info: {title: items, version: '1'}
paths:
  /items:
    post:
      parameters:
        - {name: since, in: query, schema: {type: integer, format: int64}}
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                big: {type: integer, format: int64}
                list: {type: array, items: {$ref: '#/components/schemas/Id'}}
                plain: {type: integer}
      responses: {'200': {description: ok}}
components:
  schemas:
    Id: {type: integer, format: int64}
`;

const MAX = '9223372036854775807';
const MIN = '-9223372036854775808';

t.test('what a validation is told of the numbers at the ends of int64', async (t) => {
  t.same(numbersSent([MAX]), { maxFits: true, belowMin: false });
  t.same(numbersSent(['9223372036854775808']), { maxFits: false, belowMin: false });
  t.same(numbersSent([MAX, '9223372036854775808']), { maxFits: false, belowMin: false }, 'one beyond: the end is not taken as fitting');
  t.same(numbersSent(['-9223372036854775809', '1']), { maxFits: false, belowMin: true });
  t.same(numbersSent([MIN, '+09223372036854775807']), { maxFits: true, belowMin: false }, 'parameter text: sign and leading zeros');
});

t.test('int64 values beyond the range are refused in bodies and parameters; the ends pass', async (t) => {
  const { call } = await startSpecInbound(t, SPEC, { maxBodySize: 1 << 16, fileName: 'items.yaml' });
  const post = (body: string, query = '') => call('POST', `/items${query}`, { 'content-type': 'application/json' }, body);
  const passing = [`{"big":${MAX}}`, `{"big":${MIN}}`, '{"big":9223372036854775000}', `{"list":[1,${MAX},${MIN}]}`, '{"plain":99999999999999999999}', '{"big":-9223372036854775000}'];
  for (const body of passing) t.equal((await post(body)).status, 200, `${body} passes`);
  for (const query of [`?since=${MAX}`, `?since=${MIN}`, '?since=%2B9223372036854775807']) t.equal((await post('{}', query)).status, 200, `${query} passes`);
  const refused: Array<[string, string, string]> = [
    ['{"big":99999999999999999999}', '', 'body/big: must be an int64 (from -9223372036854775808 to 9223372036854775807)'],
    ['{"big":9223372036854775808}', '', 'body/big: must be an int64'],
    ['{"big":9223372036854775809}', '', 'body/big: must be an int64'],
    ['{"big":-9223372036854775809}', '', 'body/big: must be an int64'],
    ['{"list":[1,9223372036854775808]}', '', 'body/list/1: must be an int64'],
    [`{"big":${MAX},"plain":9223372036854775808}`, '', 'body/big: must be an int64'],
    ['{}', '?since=9223372036854775808', 'query/since: must be an int64'],
    ['{}', '?since=-9223372036854775809', 'query/since: must be an int64'],
  ];
  for (const [body, query, message] of refused) {
    const res = await post(body, query);
    t.equal(res.status, 400, `${query} ${body} is refused`);
    t.match(res.message, message);
  }
});
