// GET /debug/tls keeps its last 100 failed handshakes, at most 10 from one address: a real
// sidecar's inbound refuses a caller from 127.0.0.2 (the failure an operator is looking for),
// then 120 handshakes from one scanner address, 127.0.0.3. The caller's failure is still listed,
// with the scanner's newest 10; before, the scanner's 100 pushed it off the list.

import t from 'tap';
import { makePki } from '../helpers/pki.js';
import { refusedFrom, startFilesSidecar } from '../helpers/files-sidecar.js';

interface Entry { peer: string; reason: string; time: string }


t.test("one address's failures cannot push another's off /debug/tls", async (t) => {
  const pki = await makePki('mesh.local');
  const fx = await startFilesSidecar(pki, t.testdir(), '0.0.0.0');
  t.teardown(() => fx.close());
  const failures = async () => (JSON.parse((await fx.adminGet('/debug/tls')).toString('utf8')) as { failures: Entry[] }).failures;
  const waitFor = async (what: string, check: (list: Entry[]) => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!check(await failures())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const from = (list: Entry[], address: string) => list.filter((e) => e.peer.startsWith(`${address}:`));

  await refusedFrom(fx.inboundPort, '127.0.0.2', pki.bundlePem);
  await waitFor("the caller's failure", (list) => from(list, '127.0.0.2').length === 1);
  // sequential: the inbound's cap on one address's handshakes in progress never applies
  for (let i = 0; i < 120; i++) await refusedFrom(fx.inboundPort, '127.0.0.3', pki.bundlePem);
  const metric = async () => Number(/^meshcar_tls_handshake_failures_total\{direction="inbound",reason="no_client_cert"\} (\d+)$/m.exec((await fx.adminGet('/metrics')).toString('utf8'))?.[1] ?? 0);
  const deadline = Date.now() + 10_000;
  while ((await metric()) < 121 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(await metric(), 121, 'every failure counted');

  const list = await failures();
  t.equal(from(list, '127.0.0.2').length, 1, "the caller's failure is still listed");
  t.equal(from(list, '127.0.0.2')[0]?.reason, 'no_client_cert');
  t.equal(from(list, '127.0.0.3').length, 10, "the scanner's newest 10, no more");
  t.equal(list.length, 11);
  const times = list.map((e) => Date.parse(e.time));
  t.same(times, [...times].sort((a, b) => b - a), 'newest first');
  t.equal(list[list.length - 1]?.peer.split(':')[0], '127.0.0.2', 'the oldest is the caller');
});
