// The signals `meshcar run` answers from its first moment (from before its modules load:
// holdSignalsFromStart, called by src/cli.ts), before the config
// is read and the identity is fetched (a CA not up yet holds start-up for up to 30 s). Without
// a listener SIGHUP's default action ends the process (exit 129), and a SIGTERM during start-up
// ended it with 143 and no "stopped" line. A SIGHUP that comes before the sidecar can reload is
// kept and delivered once it can; a SIGTERM or SIGINT during start-up is remembered for the
// command to stop what started. Once start-up is over the command hands SIGTERM/SIGINT to
// untilSignal (the drain); SIGHUP stays here, reloading, until close(). `meshcar ca serve` uses
// it the same way, its "reload" a warning that the CA server does not reload.

/** Signals that came before StartupSignals took over (while the modules loaded). */
let earlyHangUp = false;
let earlyStop = false;
const onEarlyHangUp = (): void => {
  earlyHangUp = true;
};
const onEarlyStop = (): void => {
  earlyStop = true;
};

/**
 * Holds SIGHUP, SIGTERM and SIGINT from the process's first moment (src/cli.ts, before any other
 * module loads): one that comes is kept for StartupSignals, which takes over the listeners.
 */
export function holdSignalsFromStart(): void {
  process.on('SIGHUP', onEarlyHangUp);
  process.on('SIGTERM', onEarlyStop).on('SIGINT', onEarlyStop);
}

export class StartupSignals {
  private reload: (() => void) | undefined;
  private hangUpWaiting = false;
  private stopWasAsked = false;
  private stopAskedResolve: () => void = () => undefined;
  /** Resolves at the first SIGTERM or SIGINT while these listeners are on. */
  readonly stopAsked = new Promise<void>((resolve) => (this.stopAskedResolve = resolve));

  private readonly onHangUp = () => {
    if (this.reload) this.reload();
    else this.hangUpWaiting = true;
  };

  private readonly onStop = () => {
    this.stopWasAsked = true;
    this.stopAskedResolve();
  };

  constructor() {
    process.on('SIGHUP', this.onHangUp);
    process.on('SIGTERM', this.onStop).on('SIGINT', this.onStop);
    // after ours are on, so no signal finds the process without a listener
    process.off('SIGHUP', onEarlyHangUp);
    process.off('SIGTERM', onEarlyStop).off('SIGINT', onEarlyStop);
    this.hangUpWaiting = earlyHangUp;
    if (earlyStop) this.onStop();
  }

  /** Whether SIGTERM or SIGINT has come. */
  get stopRequested(): boolean {
    return this.stopWasAsked;
  }

  /** From now on SIGHUP calls `reload`; one (or more) that came before is delivered now, once. */
  reloadWith(reload: () => void): void {
    this.reload = reload;
    if (this.hangUpWaiting) {
      this.hangUpWaiting = false;
      reload();
    }
  }

  /** Start-up is over: SIGTERM and SIGINT are the caller's from here (untilSignal). Says whether one came meanwhile. */
  handOverStop(): boolean {
    process.off('SIGTERM', this.onStop).off('SIGINT', this.onStop);
    return this.stopWasAsked;
  }

  close(): void {
    process.off('SIGHUP', this.onHangUp);
    process.off('SIGTERM', this.onStop).off('SIGINT', this.onStop);
  }
}
