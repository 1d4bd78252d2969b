// Text a peer or caller chose (a property name, a certificate's URI SAN or subject, a CSR's
// identity) quoted in an answer or a log line, cut to a bound: the sender must not size what
// we write. One format everywhere: the first `max` characters, then how long the text was.

/** `text`, or its first `max` characters followed by `… (N characters)`. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * What one UTF-16 unit of `text` may take in a JSON log line at most: 1 byte for printable
 * ASCII, 2 for `"` and `\`, 6 for anything else (`\uXXXX`, which the log writes for controls
 * and many invisible characters; no UTF-8 sequence of a unit is longer).
 */
function loggedBytes(code: number): number {
  if (code === 0x22 || code === 0x5c) return 2;
  return code >= 0x20 && code < 0x7f ? 1 : 6;
}

/**
 * As clip, but cut where the text would pass `maxBytes` as a JSON log line writes it: a log
 * line must stay within what one write to a pipe takes whole (logging.ts), and 2,000 quotes
 * or C1 controls take 2 or 6 bytes each there.
 */
export function clipLogged(text: string, maxBytes: number): string {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    bytes += loggedBytes(text.charCodeAt(i));
    // a surrogate pair is not cut in two
    if (bytes > maxBytes) return `${text.slice(0, i > 0 && text.charCodeAt(i - 1) >= 0xd800 && text.charCodeAt(i - 1) < 0xdc00 ? i - 1 : i)}… (${text.length} characters)`;
  }
  return text;
}
