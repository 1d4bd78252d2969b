// Preload (node --require) for a test's child process: its JS clock (Date, Date.now) runs
// MESHCAR_TEST_CLOCK_AHEAD_MS ahead of the host's, as on a host whose clock is ahead. Only
// this process's view changes: TLS in OpenSSL, timers and the other processes keep real time.
'use strict';
const aheadMs = Number(process.env.MESHCAR_TEST_CLOCK_AHEAD_MS || 0);
const RealDate = Date;
class AheadDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + aheadMs);
    else super(...args);
  }
  static now() {
    return RealDate.now() + aheadMs;
  }
}
globalThis.Date = AheadDate;
