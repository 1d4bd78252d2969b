// A WebSocket tunnel through a real sidecar pair passes backpressure both ways: a writer that
// pushes tens of MB at an app that reads nothing is stopped once the sockets' buffers are full,
// and neither sidecar holds what the reader has not taken (a relay that wrote on without
// waiting for 'drain' would queue all of it in the process). Measured as the memory the process
// (both sidecars and both apps, one process) still holds after a full garbage collection, so
// what the kernel's socket buffers take on loopback (a few MB per connection) does not count.
// test-run: own process (it measures this process's memory)

import t from 'tap';
import net from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openTunnel, startTunnelPair, SWITCHING } from '../helpers/tunnel-pair.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const PUSH_BYTES = 48 * 1024 * 1024;
/** A writer is taken as stopped once its socket has not drained for this long. */
const STALL_MS = 600;
/** What the process may still hold once the writer stopped: a few socket high-water marks, not the MBs pushed. */
const HELD_LIMIT_MB = 8;

function heldMb(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return (m.heapUsed + m.external + m.arrayBuffers) / (1024 * 1024);
}

/** Writes as long as `socket` takes it (waiting for 'drain'), until PUSH_BYTES or a stall; the bytes taken. */
async function pushUntilStalled(socket: net.Socket): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  while (sent < PUSH_BYTES) {
    sent += chunk.length;
    if (socket.write(chunk)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        socket.off('drain', onDrain);
        resolve(false);
      }, STALL_MS);
      const onDrain = () => {
        clearTimeout(timer);
        resolve(true);
      };
      socket.once('drain', onDrain);
    });
    if (!drained) break;
  }
  return sent;
}

t.test('the calling app pushes, the far app reads nothing: the writer is stopped, the sidecars hold little', async (t) => {
  const pair = await startTunnelPair((socket) => socket.write(SWITCHING)); // paused: never reads
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  t.teardown(() => tunnel.socket.destroy());
  const before = heldMb();
  const sent = await pushUntilStalled(tunnel.socket);
  const held = heldMb() - before;
  t.ok(sent < PUSH_BYTES, `the writer was stopped (${(sent / 1048576).toFixed(1)} MB taken of ${PUSH_BYTES / 1048576})`);
  t.ok(held < HELD_LIMIT_MB, `the process holds ${held.toFixed(1)} MB more (at most ${HELD_LIMIT_MB})`);
});

t.test('the far app pushes, the calling app reads nothing: the writer is stopped, the sidecars hold little', async (t) => {
  let pushed: Promise<number> | undefined;
  let before = 0;
  const pair = await startTunnelPair((socket) => {
    socket.write(SWITCHING);
    // after the 101 has had time to reach the calling app, which then stops reading
    setTimeout(() => {
      before = heldMb();
      pushed = pushUntilStalled(socket);
    }, 100);
  });
  t.teardown(() => pair.close());
  const tunnel = await openTunnel(pair.outbound.port);
  tunnel.socket.pause();
  t.teardown(() => tunnel.socket.destroy());
  for (let i = 0; i < 100 && pushed === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const sent = await (pushed as Promise<number>);
  const held = heldMb() - before;
  t.ok(sent < PUSH_BYTES, `the writer was stopped (${(sent / 1048576).toFixed(1)} MB taken of ${PUSH_BYTES / 1048576})`);
  t.ok(held < HELD_LIMIT_MB, `the process holds ${held.toFixed(1)} MB more (at most ${HELD_LIMIT_MB})`);
});
