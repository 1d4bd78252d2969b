// A request path in one canonical form (RFC 3986 §6.2.2), as the app behind will read it: what
// the OpenAPI matcher compares (src/schema/path-matcher.ts) and what a learned route label is
// made from (src/metrics/route-templates.ts), so `/orders/%6Dine` is `/orders/mine` to both.

const ESCAPE = /%([0-9A-Fa-f]{2})/g;

/**
 * The path in canonical form (RFC 3986 §6.2.2). A `%XX` that spells a printable
 * ASCII character is decoded, hex in either case: §6.2.2.2 makes that so for unreserved
 * characters (`%6D` is `m`), and apps decode the others as well. Kept encoded, with
 * upper-case hex (§6.2.2.1): `/` and `%` (decoded, they would split a segment or start another
 * escape, and a parameter would be decoded twice), the space, control characters and bytes
 * above 0x7F. So every escape left is decoded exactly once, into a parameter's value; and the
 * form is its own canonical form. A path without `%` is returned as it is.
 */
export function canonicalPath(path: string): string {
  if (path.indexOf('%') === -1) return path;
  return path.replace(ESCAPE, (_escape, hex: string) => {
    const byte = parseInt(hex, 16);
    if (byte <= 0x20 || byte >= 0x7f || byte === 0x2f || byte === 0x25) return `%${hex.toUpperCase()}`;
    return String.fromCharCode(byte);
  });
}
