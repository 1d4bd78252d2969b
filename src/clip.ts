// Text a peer or caller chose (a property name, a certificate's URI SAN or subject, a CSR's
// identity) quoted in an answer or a log line, cut to a bound: the sender must not size what
// we write. One format everywhere: the first `max` characters, then how long the text was.

/** `text`, or its first `max` characters followed by `… (N characters)`. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
