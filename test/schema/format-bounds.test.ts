// Formats whose ajv-formats check costs time as long as the value (src/schema/format-bounds.ts):
// a 1 MiB date-time took 190-250 ms of the event loop, a regex 350-550 ms, per request (a
// review). A value past its format's bound is refused at once; real values pass as before, and
// a date-time's comparison (formatMinimum) still works. Through the spec checks a sidecar runs.

import t from 'tap';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CompiledSpec } from '../../src/schema/spec.js';
import { checkJsonBody } from '../../src/schema/json-body.js';

const SPEC = `openapi: 3.0.3
info: {title: formats, version: '1'}
paths:
  /events:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                when: {type: string, format: date-time}
                rule: {type: string, format: regex}
                mail: {type: string, format: email}
                link: {type: string, format: uri-reference}
      responses: {'200': {description: ok}}
`;

t.test('long values of costly formats are refused at once; real ones pass', async (t) => {
  const file = join(t.testdir(), 'spec.yaml');
  await writeFile(file, SPEC);
  const spec = await CompiledSpec.load(file);
  const body = spec.check('POST', '/events', '', { 'content-type': 'application/json' }, true).body!;
  const check = (value: Record<string, string>) => {
    const started = performance.now();
    const verdict = checkJsonBody(body, Buffer.from(JSON.stringify(value)));
    return { kind: verdict?.kind, ms: performance.now() - started };
  };
  t.equal(check({ when: '2026-12-07T06:38:34.123Z', rule: '^[a-z]+$', mail: 'ada@example.org', link: '/orders/1?x=y' }).kind, undefined, 'real values pass');
  t.equal(check({ when: 'yesterday' }).kind, 'body', 'a bad date-time is refused as before');
  const huge = ' '.repeat(1 << 20);
  // the same megabyte in a field with no format: what parsing the body costs on this host now
  const baseline = Math.min(...[1, 2, 3].map(() => check({ other: `2020-01-01T${huge}` }).ms));
  for (const [field, value] of [
    ['when', `2020-01-01T${huge}`],
    ['rule', `a${huge}`],
    ['mail', `a@${'b'.repeat(1 << 20)}.org`],
    ['link', `/${'a'.repeat(1 << 20)}`],
  ] as const) {
    // the best of three, as the baseline is: one run on a loaded host read 126.8 against a 120 ms bound
    const runs = [1, 2, 3].map(() => check({ [field]: value }));
    const kind = runs[0]!.kind;
    const ms = Math.min(...runs.map((r) => r.ms));
    t.equal(kind, 'body', `${field}: 1 MiB refused`);
    // the format checks took 170-550 ms more than the parse (35-50 ms here)
    t.ok(ms < baseline * 2 + 30, `${field}: in ${ms.toFixed(1)} ms (the parse alone: ${baseline.toFixed(1)} ms)`);
  }
});
