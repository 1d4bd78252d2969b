// `Retry-After` as RFC 9110 §10.2.3 defines it: delay-seconds, or an HTTP-date in one of the
// three forms §5.6.7 makes a recipient accept (IMF-fixdate, RFC 850, asctime). Anything else is
// no Retry-After at all (the caller's own backoff applies): Date.parse alone takes almost any
// text, and read `-5`, `1.5` or `5, 10` as dates in the past, so an upstream's malformed
// value turned the retry's backoff into no wait at all, and `2099-01-01` into one past any
// deadline.

const DAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const DAY_NAME = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTH = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d{2}:\\d{2}:\\d{2}';
const IMF_FIXDATE = new RegExp(`^${DAY}, \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${DAY_NAME}, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} (?:\\d{2}| \\d) ${TIME} \\d{4}$`);
const DELAY_SECONDS = /^\d+$/;

/** `Retry-After` in ms (the first of repeated fields); undefined when absent or not of the RFC's forms. */
export function retryAfterMs(value: unknown, nowMs: number = Date.now()): number | undefined {
  const field = Array.isArray(value) ? value[0] : value;
  if (typeof field !== 'string') return undefined;
  const text = field.trim();
  if (DELAY_SECONDS.test(text)) return Number(text) * 1000;
  // asctime carries no zone: HTTP dates are GMT, never the host's local time
  const at = IMF_FIXDATE.test(text) || RFC850_DATE.test(text) ? Date.parse(text) : ASCTIME_DATE.test(text) ? Date.parse(`${text} GMT`) : NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
