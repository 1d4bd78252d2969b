// A CA-signed upstream whose certificate's URI SAN is not a SPIFFE ID and 30 KB long: the dial
// is refused (no usable SPIFFE ID), and what quotes the SAN stays short: the error answer the
// app gets and the sidecar's warn line ('upstream endpoint failed') carry its first 256
// characters and its length, not 30 KB a hostile upstream chose.

import t from 'tap';
import { memoryLogger } from '../helpers/ca.js';
import { makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';

const LONG = 30_000;

t.test('an upstream with a 30 KB non-SPIFFE URI SAN: the answer and the warn line are clipped', async (t) => {
  const pki = await makePki(TD);
  const leaf = await pki.issueWithUris([`https://upstream.example/${'a'.repeat(LONG)}`]);
  const upstream = await startUpstream(pki, { leaf });
  const lines: Array<Record<string, unknown>> = [];
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { logger: memoryLogger(lines) });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const res = await request(fx.port, { path: '/x', headers: { host: 'payments' } });
  t.ok(res.status >= 500, `refused: ${res.status}`);
  const body = res.body.toString('utf8');
  t.match(body, /is not a SPIFFE ID/, 'the answer says why');
  t.ok(body.length < 2000, `the answer is ${body.length} bytes`);
  const longest = Math.max(0, ...lines.map((l) => JSON.stringify(l).length));
  t.ok(lines.some((l) => String(l.msg) === 'upstream endpoint failed'), 'the failure is logged');
  t.ok(longest < 2000, `the longest log line is ${longest} characters`);
});
