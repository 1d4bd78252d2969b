// A caller that sends a malformed ClientHello and is gone at once (a scanner, a fuzzer), on a
// real sidecar: its failed handshake is logged and listed in GET /debug/tls under its address,
// and the warn line's per-address rate limit is its own. The address was remembered only at the
// handshake's first key ('keylog'), which a broken hello never reaches, and a closed socket no
// longer tells it: every such caller was `unknown`, one rate limit for all of them (the second
// of two scanners within 10 s was not logged).

import t from 'tap';
import net from 'node:net';
import { makePki } from '../helpers/pki.js';
import { startFilesSidecar } from '../helpers/files-sidecar.js';

const TD = 'mesh.local';

/** A TLS handshake record whose body is no ClientHello, sent from `localAddress`; the socket is destroyed right after: its local port. */
function brokenHello(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
      const local = socket.localPort as number;
      socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]));
      socket.destroy();
      resolve(local);
    });
    socket.on('error', reject);
  });
}

t.test('a caller gone after a broken ClientHello is named by its address', async (t) => {
  const fx = await startFilesSidecar(await makePki(TD), t.testdir());
  t.teardown(() => fx.close());
  const { lines, inboundPort } = fx;

  const ports = [await brokenHello(inboundPort, '127.0.0.21'), await brokenHello(inboundPort, '127.0.0.22')];
  const warned = () => lines.filter((l) => String(l.msg).startsWith('TLS handshake failed, inbound from'));
  const deadline = Date.now() + 5_000;
  while (warned().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.same(
    warned().map((l) => String(l.msg).split(':').slice(0, 2).join(':')),
    [`TLS handshake failed, inbound from 127.0.0.21:${ports[0]}`, `TLS handshake failed, inbound from 127.0.0.22:${ports[1]}`],
    'one warn line per caller, each naming its address',
  );
  const listed = (await fx.adminGet('/debug/tls')).toString('utf8');
  const peers = (JSON.parse(listed) as { failures: Array<{ peer: string }> }).failures.map((f) => f.peer).sort();
  t.same(peers, [`127.0.0.21:${ports[0]}`, `127.0.0.22:${ports[1]}`], 'GET /debug/tls lists both by address');
});
