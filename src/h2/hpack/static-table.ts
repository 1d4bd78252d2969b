// The static table of RFC 7541 Appendix A (indices 1..61) and the lookups both sides need:
// the decoder reads entries by index, the encoder finds an index by name or by name and value.

/** Number of static entries; dynamic indices start right after (RFC 7541 §2.3.3). */
export const STATIC_TABLE_LENGTH = 61;

const ENTRIES: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], // 1
  [':method', 'GET'], // 2
  [':method', 'POST'], // 3
  [':path', '/'], // 4
  [':path', '/index.html'], // 5
  [':scheme', 'http'], // 6
  [':scheme', 'https'], // 7
  [':status', '200'], // 8
  [':status', '204'], // 9
  [':status', '206'], // 10
  [':status', '304'], // 11
  [':status', '400'], // 12
  [':status', '404'], // 13
  [':status', '500'], // 14
  ['accept-charset', ''], // 15
  ['accept-encoding', 'gzip, deflate'], // 16
  ['accept-language', ''], // 17
  ['accept-ranges', ''], // 18
  ['accept', ''], // 19
  ['access-control-allow-origin', ''], // 20
  ['age', ''], // 21
  ['allow', ''], // 22
  ['authorization', ''], // 23
  ['cache-control', ''], // 24
  ['content-disposition', ''], // 25
  ['content-encoding', ''], // 26
  ['content-language', ''], // 27
  ['content-length', ''], // 28
  ['content-location', ''], // 29
  ['content-range', ''], // 30
  ['content-type', ''], // 31
  ['cookie', ''], // 32
  ['date', ''], // 33
  ['etag', ''], // 34
  ['expect', ''], // 35
  ['expires', ''], // 36
  ['from', ''], // 37
  ['host', ''], // 38
  ['if-match', ''], // 39
  ['if-modified-since', ''], // 40
  ['if-none-match', ''], // 41
  ['if-range', ''], // 42
  ['if-unmodified-since', ''], // 43
  ['last-modified', ''], // 44
  ['link', ''], // 45
  ['location', ''], // 46
  ['max-forwards', ''], // 47
  ['proxy-authenticate', ''], // 48
  ['proxy-authorization', ''], // 49
  ['range', ''], // 50
  ['referer', ''], // 51
  ['refresh', ''], // 52
  ['retry-after', ''], // 53
  ['server', ''], // 54
  ['set-cookie', ''], // 55
  ['strict-transport-security', ''], // 56
  ['transfer-encoding', ''], // 57
  ['user-agent', ''], // 58
  ['vary', ''], // 59
  ['via', ''], // 60
  ['www-authenticate', ''], // 61
];

/** Names and values by HPACK index; slot 0 is a placeholder so index i is entry i. */
export const STATIC_NAMES: readonly string[] = ['', ...ENTRIES.map((e) => e[0])];
export const STATIC_VALUES: readonly string[] = ['', ...ENTRIES.map((e) => e[1])];

/** Lowest static index carrying each name (what a literal with indexed name refers to). */
export const STATIC_NAME_INDEX: ReadonlyMap<string, number> = new Map(
  ENTRIES.map((e, i) => [e[0], i + 1] as const).reverse(),
);

/** name → value → static index (an empty value is a value too: `accept: ` is entry 19). */
export const STATIC_FIELD_INDEX: ReadonlyMap<string, ReadonlyMap<string, number>> = (() => {
  const byName = new Map<string, Map<string, number>>();
  ENTRIES.forEach(([name, value], i) => {
    let values = byName.get(name);
    if (values === undefined) byName.set(name, (values = new Map()));
    values.set(value, i + 1);
  });
  return byName;
})();
