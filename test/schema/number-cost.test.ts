// What checking a JSON body of numbers costs, against a body of short numbers of the same size
// that the precision checks never read. 1 MiB of `1e1` (an exponent: scanned) took ~0.3 s of
// event loop, every number read exactly (~3 µs each), and 1 MiB of one inexact number repeated
// as long; now a number of at most 15 significant digits is held by a double without that
// reading, and a body's repeated number is read once (the OpenAPI hunt). The short way is
// checked against an exact reading of its own (fast-check).

import t from 'tap';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { checkJsonBody, type BodyCheck } from '../../src/schema/json-body.js';
import { cpuMsPerRun } from '../helpers/cpu-cost.js';
import { inexactNumbers } from '../../src/schema/number-precision.js';
import fc from 'fast-check';

const SPEC = `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /items:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, properties: {a: {type: array, items: {}}}}
      responses: {'200': {description: ok}}
`;

/** A body of about `bytes` that is an array of `item` repeated. */
function bodyOf(item: string, bytes: number): Buffer {
  return Buffer.from(`{"a":[${Array(Math.floor(bytes / (item.length + 1))).fill(item).join(',')}]}`);
}

t.test('bodies of long or exponent numbers cost a few times a body of short ones, not tens of times', async (t) => {
  const spec = await CompiledSpec.load(join(t.testdir({ 'api.yaml': SPEC }), 'api.yaml'));
  const check = spec.check('POST', '/items', '', { 'content-type': 'application/json' }, true).body as BodyCheck;
  const size = 256 * 1024;
  const baseline = bodyOf('0.1', size);
  t.equal(checkJsonBody(check, baseline), undefined);
  const base = cpuMsPerRun(() => checkJsonBody(check, baseline));
  for (const [item, most] of [['1e1', 4], ['1.00000000000000001', 6]] as const) {
    const body = bodyOf(item, size);
    t.equal(checkJsonBody(check, body), undefined, `${item}: passes`);
    const ratio = cpuMsPerRun(() => checkJsonBody(check, body)) / base;
    t.ok(ratio < most, `${item} ×${Math.floor(size / (item.length + 1))}: ${ratio.toFixed(1)} times the short numbers' ${base.toFixed(1)} ms (at most ${most})`);
  }
});

/** A decimal's value as (digits without leading or trailing zeros, exponent of the last digit): an oracle of its own. */
function exactValue(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (m === null) throw new Error(`not a number: ${text}`);
  let digits = `${m[2]}${m[3] ?? ''}`.replace(/^0+/, '');
  let exp = Number(m[4] ?? 0) - (m[3] ?? '').length;
  if (digits === '') return '0';
  while (digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    exp++;
  }
  return `${m[1]}${digits}e${exp}`;
}

t.test('the short way agrees with reading each number exactly', async (t) => {
  // a number whose form says a double holds it is one whose double reads back as its value
  const token = fc
    .tuple(fc.boolean(), fc.stringMatching(/^[0-9]{1,17}$/), fc.nat(17), fc.integer({ min: -330, max: 330 }))
    .map(([negative, digits, point, exp]) => {
      const at = Math.min(point, digits.length - 1);
      const mantissa = at > 0 ? `${digits.slice(0, at)}.${digits.slice(at)}` : digits;
      return `${negative ? '-' : ''}${mantissa.replace(/^0+(?=\d)/, '')}e${exp}`;
    });
  fc.assert(
    fc.property(token, (text) => {
      const value = Number(text);
      if (!Number.isFinite(value)) return;
      const held = exactValue(text) === exactValue(String(value).replace('e+', 'e'));
      const found = inexactNumbers(`[${text}]`).length > 0;
      if (found === held) throw new Error(`${text}: ${held ? 'held, but found inexact' : 'not held, but passed as held'}`);
    }),
    { numRuns: 20_000 },
  );
  t.pass('20,000 tokens');
});
