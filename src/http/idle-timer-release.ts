// Node 20 leaves the idle timer of an HTTP/2 session or stream (its setTimeout(ms)) armed when
// the object is destroyed: destroy() marks it destroyed first, and the setTimeout(0) it then runs
// (Http2Session's close, Http2Stream's closeStream) returns at once on a destroyed object. The
// timer holds the destroyed session or stream, and everything it reaches (our request state
// noted on it, the app's request and answer), until it would have fired: the keep-alive time
// (65 s) for an app's h2c session, the idle timeout (5 min) for an upstream stream. Traffic that
// ends sessions or cuts streams then holds all of them from that long. A stream that closes by
// itself is not concerned (closed before destroyed, its timer is cleared).

/** What carries a Node idle timer and ends with destroy(). */
interface TimerHolder {
  setTimeout(ms: number): unknown;
  destroy(...args: never[]): unknown;
}

/**
 * Makes `target`'s destroy() clear its idle timer first, while setTimeout(0) still works. Every
 * end passes through destroy(): ours, Node's (a closed socket, a finished GOAWAY, a session
 * ending with streams open), addAbortSignal's. A shared function, not a closure per object.
 */
export function clearIdleTimerOnDestroy(target: TimerHolder): void {
  target.destroy = destroyClearingTimer;
}

function destroyClearingTimer(this: TimerHolder, ...args: never[]): unknown {
  this.setTimeout(0);
  return (Object.getPrototypeOf(this) as TimerHolder).destroy.apply(this, args);
}
