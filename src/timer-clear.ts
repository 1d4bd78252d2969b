// Clearing an unref'd timer without leaving Node's list for its duration behind. Node keeps one
// list per timer duration (in ms) and deletes it when clearTimeout() leaves it empty, but only
// for a ref'd timer ("unrefed ones are incredibly likely to come from http and be recreated
// shortly after", lib/timers.js): an emptied list of an unref'd timer stays, ~0.8 KB, until the
// duration has passed. A duration no other timer shares (the time to a caller certificate's
// expiry, a jittered session age) is one such list per timer, kept for as long as the timer
// would have run: hours after its connection closed, for every connection opened and closed.
// Ref'd for the moment of its clearing, the timer takes its empty list with it; nothing runs in
// between, so the ref never holds the process.

/** setTimeout's longest wait, 2^31-1 ms (24.8 days): a longer one is taken as 1 ms and fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** clearTimeout(), also dropping the emptied list of an unref'd timer. */
export function clearTimer(timeout: NodeJS.Timeout | undefined): void {
  if (timeout === undefined) return;
  timeout.ref();
  clearTimeout(timeout);
}
