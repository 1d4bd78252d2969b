// A WebSocket tunnel's idle timeout (an upstream's tunnelIdleTimeout on the outbound), counted
// from the last byte the sidecar passed either way rather than kept by the app socket's own
// timer (socket.setTimeout). Node re-arms a socket's timer on any write, a write of no bytes
// too, so the sidecar could not both keep that timer and ask a half-closed app socket every
// second whether it was reset since (tunnel-reset.ts watchHalfClosed): the asking kept an idle
// tunnel from ever timing out, and without it an app that sent its FIN and then reset held
// both sidecars' connections of the tunnel until the timeout (1 h by default). One timer per
// tunnel, looked at only when it runs out: a tunnel that moves bytes costs a timestamp per chunk.

import type { Socket } from 'node:net';

/**
 * Calls `cut` once no byte has come in on `app` or `other` (each read on one is written to the
 * other, so this is every byte either way) for `ms`. Stops when `app` closes, as a timer on it
 * did. Call it once both sides are piped: a 'data' listener added earlier would set a socket
 * flowing before the pipe takes its bytes.
 */
export function cutWhenIdle(app: Socket, other: Socket, ms: number, cut: () => void): void {
  let last = performance.now();
  const moved = () => {
    last = performance.now();
  };
  const look = () => {
    const quiet = performance.now() - last;
    if (quiet >= ms) {
      cut();
      return;
    }
    // bytes moved meanwhile: the limit counts from the last of them
    timer = setTimeout(look, ms - quiet);
    timer.unref();
  };
  let timer = setTimeout(look, ms);
  // as a socket's own timer: an idle tunnel holds no process open
  timer.unref();
  app.on('data', moved);
  other.on('data', moved);
  app.once('close', () => {
    clearTimeout(timer);
    other.off('data', moved);
  });
}
