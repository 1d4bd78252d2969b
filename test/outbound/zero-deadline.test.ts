// A grpc-timeout of zero (`0S`, `0n`): gRPC's wire format allows positive values only, so it is
// no deadline of ours, as any other value we cannot read: the configured timeout applies and the
// header goes on as the app sent it (a gRPC server behind it answers DEADLINE_EXCEEDED itself).
// It was read as 1 ms, a timer racing the upstream's answer: mostly 504 `upstream_timeout`
// saying "did not answer within 1 ms", sometimes the answer. Real outbound, real mTLS upstream.

import t from 'tap';
import { makePki, request, startOutbound, startUpstream, TD } from '../helpers/outbound-fixture.js';
import { appDeadlineMs } from '../../src/outbound/retry.js';

t.test('grpc-timeout 0 is no deadline: every request is served, the header passed on as sent', async (t) => {
  const pki = await makePki(TD);
  const up = await startUpstream(pki);
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${up.port}`] }]);
  t.teardown(async () => {
    await fx.close();
    await up.close();
  });
  const seen: string[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) {
    const value = i % 2 === 0 ? '0S' : '00000000n';
    const res = await request(fx.port, { headers: { 'grpc-timeout': value } });
    statuses.push(res.status);
    if (res.status === 200) seen.push(String(res.json().headers['grpc-timeout']));
  }
  t.same(statuses, Array(20).fill(200), 'all 20 served');
  t.same(seen, Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? '0S' : '00000000n')), 'the upstream saw the header as sent');
  t.equal(appDeadlineMs('0S', undefined), undefined, 'no deadline read from 0S');
  t.equal(appDeadlineMs('0n', '250ms'), 250, 'x-request-timeout still applies beside it');
  t.equal(appDeadlineMs('1n', undefined), 1, 'a positive value, however small, is one');
});
