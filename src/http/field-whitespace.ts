// Optional whitespace (SP and HTAB, RFC 9110 §5.6.3) cut from the ends of a field value by scans
// from each end. The regular expression /[ \t]+$/ is retried from every space of a run that does
// not reach the end, each try running to the run's end: time square in the run's length, and V8
// does not count a new start as a backtrack, so its linear-time fallback never takes it over.
// One 64 KiB trailer of `a`, spaces and `a` held the event loop ~3 s (the regex review).

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** `value` without the SP and HTAB at its end. */
export function trimTrailingOws(value: string): string {
  let end = value.length;
  while (end > 0 && isOws(value.charCodeAt(end - 1))) end--;
  return end === value.length ? value : value.slice(0, end);
}

/** `value` without the SP and HTAB at either end. */
export function trimOws(value: string): string {
  let start = 0;
  while (start < value.length && isOws(value.charCodeAt(start))) start++;
  let end = value.length;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}
