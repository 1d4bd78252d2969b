// A tunnel whose calling app closes its whole connection (a WebSocket client closing) looks, to
// the outbound, like a half-close: a FIN. Node reads no more after it, and the look every second
// for a reset (src/http/tunnel-reset.ts watchHalfClosed) never sees one from a peer that closed
// with a FIN: a far app that ignores the relayed FIN kept the tunnel, and its circuit slot
// (maxRequests, shared with plain requests), until tunnelIdleTimeout, an hour. The half-closed
// side now has TCP keepalive on, whose probes the closed peer's kernel resets once it lets the
// connection go (60 s on Linux), and the look sees that reset. Checked here on the real socket
// with `ss`: the outbound's end of the calling app's connection carries a keepalive timer once
// the FIN came (none before it). Real sidecar pair (tunnel-pair.ts), real TLS and certificates.

import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/mesh.js';
import { endings, openTunnel, startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

const run = promisify(execFile);

/** `ss`'s line for the TCP connection from local port `local` to peer port `peer` (any state), with its timers. */
async function socketLine(local: number, peer: number): Promise<string> {
  const { stdout } = await run('ss', ['-tanoH', `( sport = :${local} and dport = :${peer} )`]);
  return stdout.trim();
}

t.test("the calling app's FIN: the outbound's end of its connection gets TCP keepalive, so a whole close is seen", async (t) => {
  // the far app echoes and never ends its side, whatever it is sent
  let farEvents: string[] | undefined;
  const pair = await startTunnelPair((socket) => {
    farEvents = endings(socket).events;
    socket.write(SWITCHING);
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.resume();
  });
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  let echoed = '';
  tunnel.socket.on('data', (chunk: Buffer) => (echoed += chunk.toString('latin1')));
  tunnel.socket.write('ping');
  await waitFor(async () => echoed === 'ping', 5000, 'the echo through the tunnel');
  const appPort = tunnel.socket.localPort as number;
  const before = await socketLine(pair.outbound.port, appPort);
  t.match(before, /^ESTAB/, `the outbound's end of the app's connection: ${before}`);
  t.notMatch(before, /keepalive/, 'no keepalive while both sides are open');

  tunnel.socket.end(); // then gone altogether, as a closing client is
  await waitFor(async () => farEvents?.includes('end') === true, 5000, "the calling app's FIN to reach the far app");
  tunnel.socket.destroy();
  let after = '';
  await waitFor(async () => /timer:\(keepalive/.test((after = await socketLine(pair.outbound.port, appPort))), 5000, 'a keepalive timer on the half-closed socket');
  t.match(after, /^CLOSE-WAIT/, `half-closed by the app, kept by the outbound for the far app's answer: ${after}`);
  t.equal(pair.outbound.outbound.inFlight, 1, 'the tunnel is still in flight (the far app has not ended its side)');
});
