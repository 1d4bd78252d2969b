// Failed TLS handshakes from many addresses: a real sidecar's inbound refuses 150 callers without
// a client certificate, each from its own loopback address (127.0.0.2 ... 127.0.0.151, as an
// IPv6 client could use a new address of its /64 for each), so the per-address rate limit never
// applies. Every failure is counted in meshcar_tls_handshake_failures_total; the warn lines
// stay within the limiter's budget for all addresses together (100 per 10 s).

import t from 'tap';
import { makePki } from '../helpers/pki.js';
import { refusedFrom, startFilesSidecar } from '../helpers/files-sidecar.js';

const TD = 'mesh.local';
const ADDRESSES = 150;


t.test(`${ADDRESSES} refused handshakes from ${ADDRESSES} addresses: all counted, at most 100 warn lines`, async (t) => {
  const pki = await makePki(TD);
  const fx = await startFilesSidecar(pki, t.testdir());
  t.teardown(() => fx.close());
  const { lines } = fx;
  const port = fx.inboundPort;

  // ten at a time: the inbound's per-address handshake cap never applies, each address is new
  for (let i = 0; i < ADDRESSES; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, j) => refusedFrom(port, `127.0.0.${2 + i + j}`, pki.bundlePem)));
  }
  const counted = async () => {
    const text = (await fx.adminGet('/metrics')).toString('utf8');
    return Number(/^meshcar_tls_handshake_failures_total\{direction="inbound",reason="no_client_cert"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };
  const deadline = Date.now() + 10_000;
  while ((await counted()) < ADDRESSES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(await counted(), ADDRESSES, 'every refused handshake counted');
  const warned = lines.filter((l) => l.level === 40 && String(l.msg).startsWith('TLS handshake failed'));
  const from = new Set(warned.map((l) => String(l.peer).replace(/:\d+$/, '')));
  t.equal(from.size, warned.length, 'one line per address at most');
  t.ok(warned.length <= 100, `${warned.length} warn lines for ${ADDRESSES} addresses`);
  t.ok(warned.length >= 90, 'the budget is used: the first addresses are logged');
});
