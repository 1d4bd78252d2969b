// How many bytes of request bodies one OpenAPI check holds in memory at once, across every
// request it reads (enforce) or watches (shadow). Each body is bounded by maxBodySize, but not
// their sum: 400 HTTP/2 streams each holding back the last byte of a 1 MiB body took a sidecar
// from 85 to 603 MB until the timeout let them go. Past the budget, enforce answers 503
// `overloaded` (Envoy's overload manager answers the same way) and shadow stops watching
// that body (it goes on unchecked); bytes return when their body is done or abandoned.

export const DEFAULT_MAX_BUFFERED = 64 * 1024 * 1024;

export class BodyBudget {
  used = 0;

  /** Bytes it may hold; a reload moves it (budget-carry.ts), the bytes held still counted. */
  constructor(public limit: number) {}

  /** Takes `bytes` from the budget; false (nothing taken) when that would pass the limit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}
