// How many bytes of request bodies one OpenAPI check holds in memory at once, across every
// request it reads (enforce) or watches (shadow). Each body is bounded by maxBodySize, but not
// their sum: 400 HTTP/2 streams each holding back the last byte of a 1 MiB body took a sidecar
// from 85 to 603 MB until the timeout let them go. Past the budget, enforce answers 503
// `overloaded` (Envoy's overload manager answers the same way) and shadow stops watching
// that body (it goes on unchecked); bytes return when their body is done or abandoned.
//
// One caller (an inbound caller's SPIFFE ID) may hold all of it but an eighth, and never less
// than one whole body: bodies trickled within the idle timeout are held as long as the caller
// likes, so one compromised caller with enough of them filled the budget, and every other
// caller's JSON request was 503 for as long as it went on. The reserve keeps room for the
// others (as the app pool's per-caller share does, src/inbound/app-caller-share.ts). The
// outbound's bodies all come from its one app: they are taken without a caller.

export const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;

export class BodyBudget {
  used = 0;
  /** The bytes each caller holds now (callers holding none are not kept). */
  private readonly held = new Map<string, number>();

  /** Bytes it may hold, and the largest one body may be; a reload moves both (budget-carry.ts), the bytes held still counted. */
  constructor(
    public limit: number,
    public maxBodySize = limit,
  ) {}

  /** The most one caller may hold: all but an eighth of the limit, at least one whole body. */
  get perCaller(): number {
    return Math.max(this.limit - Math.floor(this.limit / 8), this.maxBodySize);
  }

  /** Bytes held by `caller` now. */
  heldBy(caller: string): number {
    return this.held.get(caller) ?? 0;
  }

  /** Takes `bytes` from the budget (for `caller`, if given); false (nothing taken) when that would pass the limit or the caller's share. */
  take(bytes: number, caller?: string): boolean {
    if (this.used + bytes > this.limit) return false;
    if (caller !== undefined) {
      const held = this.heldBy(caller) + bytes;
      if (held > this.perCaller) return false;
      this.held.set(caller, held);
    }
    this.used += bytes;
    return true;
  }

  give(bytes: number, caller?: string): void {
    this.used -= bytes;
    if (caller === undefined) return;
    const held = this.heldBy(caller) - bytes;
    if (held > 0) this.held.set(caller, held);
    else this.held.delete(caller);
  }
}
