// `format: byte` (base64) on what callers send, through a real inbound in enforce mode. Before
// src/schema/byte-format.ts the check was ajv-formats' multi-line regular expression: any string
// with a line break passed (`<script>…</script>\n` as base64), and a 1 MiB string that is not
// base64 held the event loop 0.4-0.9 s per request. Now both are refused, the long one in a few
// milliseconds of CPU, and real base64 (padded or not, as RFC 4648 pads it) still passes.

import t from 'tap';
import { isBase64 } from '../../src/schema/byte-format.js';
import { h1Request } from '../helpers/inbound-fixture.js';
import { startSpecInbound } from '../helpers/spec-inbound.js';

const SPEC = `openapi: 3.0.3
info: {title: files, version: '1'}
paths:
  /files:
    post:
      parameters:
        - {name: sig, in: query, schema: {type: string, format: byte}}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties: {data: {type: string, format: byte}}
      responses: {'200': {description: ok}}
`;

/** CPU bound for checking one 1 MiB value, beyond what reading and parsing its body costs: the old check took 370+ ms. */
const CHECK_BOUND_MS = 60;

t.test('base64 as RFC 4648 writes it, and nothing else', async (t) => {
  for (const text of ['', 'AAAA', 'AA==', 'AAA=', Buffer.from('hello world!?').toString('base64'), 'ab+/'.repeat(10)]) t.ok(isBase64(text), `${JSON.stringify(text)} passes`);
  for (const text of ['A', 'AAA', 'A===', '====', 'AA=A', 'AAAA\n', '<script>alert(1)</script>\n', 'AAAA\nAAAA', 'AA-_', 'AAAA ']) t.notOk(isBase64(text), `${JSON.stringify(text)} is refused`);
});

t.test('over the inbound: a line break does not make a string base64, and a long bad one is cheap', async (t) => {
  const { f, tls } = await startSpecInbound(t, SPEC, { maxBodySize: 2 << 20, fileName: 'files.yaml' });
  const post = (body: string, query = '') => h1Request(f.port, tls, { method: 'POST', path: `/files${query}`, headers: { 'content-type': 'application/json' }, body });

  t.equal((await post(JSON.stringify({ data: Buffer.from('a file').toString('base64') }))).status, 200, 'base64 passes');
  const script = await post(JSON.stringify({ data: '<script>alert(1)</script>\n' }));
  t.equal(script.status, 400, 'markup ending in a line break is refused');
  t.match(JSON.parse(script.body).message, /^body\/data: must match format "byte"$/);
  t.equal((await post('{}', '?sig=%3Cscript%3E%0A')).status, 400, 'in the query too');

  // 1 MiB of base64 characters of the wrong length: the old check backtracked through all of it.
  // Weighed against a body as long, refused as cheaply whatever the check (its `data` is one
  // character, the 1 MiB in another property): the difference is the check's own cost, and a
  // slow or loaded machine, which inflates both, does not fail it (it did, at 153 ms of 150)
  const cpuOf = async (body: string) => {
    const before = process.cpuUsage();
    const res = await post(body);
    const cpu = process.cpuUsage(before);
    return { status: res.status, ms: (cpu.user + cpu.system) / 1000 };
  };
  // the least of five tries each, taken in turns: one try under a loaded run (four test files on
  // two cores) once read 85 ms, a collection or a descheduled thread counted in
  const sameBody = JSON.stringify({ data: 'A', other: 'A'.repeat(1 << 20) + 'AA' });
  const badBody = JSON.stringify({ data: 'A'.repeat(1 << 20) + 'AA' });
  const same = { status: 0, ms: Infinity };
  const bad = { status: 0, ms: Infinity };
  for (let i = 0; i < 5; i++) {
    for (const [body, least] of [[sameBody, same], [badBody, bad]] as const) {
      const tried = await cpuOf(body);
      least.status = tried.status;
      least.ms = Math.min(least.ms, tried.ms);
    }
  }
  t.equal(same.status, 400, 'a short bad value beside 1 MiB of other text is refused');
  t.equal(bad.status, 400, 'refused');
  const checkMs = bad.ms - same.ms;
  t.ok(checkMs < CHECK_BOUND_MS, `checking 1 MiB cost ${checkMs.toFixed(0)} ms of CPU (${bad.ms.toFixed(0)} ms against ${same.ms.toFixed(0)} ms for a body as long; bound ${CHECK_BOUND_MS} ms; the old check took 125 ms on this machine, 370-940 ms when first measured)`);
});
