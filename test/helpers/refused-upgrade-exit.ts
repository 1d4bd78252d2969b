// Child process of test/outbound/websocket-refusal-exit.test.ts: a sidecar pair in this
// process, a WebSocket upgrade whose 101 the outbound refuses (its trust bundle changed while
// the upgrade was under way: 502), and the pair closed as soon as the 502 arrives, then nothing
// left to do: the process must end by itself. Prints `saw <status line>` and `closed`. With
// FAR_VERDICT=1 it first waits (up to 5 s) for how the far app's connection ended, and prints
// `far <end|error CODE>`: its tunnel was refused, which it must read as an abort, not a clean end.

import net from 'node:net';
import { validateSvid } from '../../src/identity/svid.js';
import { TD } from './inbound-fixture.js';
import { APP_ID } from './outbound-fixture.js';
import { makePki } from './pki.js';
import { startTunnelPair, SWITCHING, UPGRADE_HEAD, type FarApp } from './tunnel-pair.js';

let release: (() => void) | undefined;
let farVerdict: ((how: string) => void) | undefined;
const farEnded = new Promise<string>((resolve) => (farVerdict = resolve));
const far: FarApp = (socket) => {
  socket.on('end', () => farVerdict?.('end'));
  socket.on('error', (err: NodeJS.ErrnoException) => farVerdict?.(`error ${err.code}`));
  release = () => {
    socket.write(SWITCHING);
    socket.resume();
  };
};
const pair = await startTunnelPair(far);
const other = await makePki(TD);
const app = net.connect({ port: pair.outbound.port, host: '127.0.0.1', allowHalfOpen: true });
app.on('error', () => undefined);
await new Promise((resolve) => app.once('connect', resolve));
app.write(UPGRADE_HEAD);
for (let i = 0; i < 250 && release === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20));
// a bundle of another root only: the upstream's path no longer verifies when its 101 comes
pair.outbound.identity.swap(validateSvid({ ...(await other.issue(APP_ID)), bundlePem: other.bundlePem }, APP_ID));
release?.();
let got = '';
await new Promise<void>((resolve) => {
  const check = (chunk?: Buffer) => {
    if (chunk) got += chunk.toString('latin1');
    if (!got.includes('\r\n\r\n')) return;
    app.off('data', check);
    resolve();
  };
  app.on('data', check);
});
console.log(`saw ${got.split('\r\n')[0]}`);
if (process.env.FAR_VERDICT === '1') console.log(`far ${await Promise.race([farEnded, new Promise((resolve) => setTimeout(resolve, 5000, 'nothing within 5 s').unref())])}`);
// at once: the inbound's side of the tunnel is cut while the FIN the refusal relayed is on its way
await pair.close();
app.destroy();
console.log('closed');
