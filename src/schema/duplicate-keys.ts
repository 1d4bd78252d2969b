// A JSON object that names one key twice. JSON.parse (and so the check) reads the last value,
// and so do most parsers; some read the first (Go's jsonparser and gojay, rapidjson's
// FindMember, ...), and some refuse the document: `{"qty": 1, "qty": 1000}` was validated as
// qty 1000 and could be read by the app as qty 1, or the other way round. RFC 8259 §4 leaves
// the meaning to each parser, I-JSON (RFC 7493 §2.3) forbids it: a body that does it is
// refused, as no reading the check picks can be the app's for sure. Run on a body JSON.parse
// has already taken (so it is well-formed): one pass over the bytes, a set of keys per object
// still open.

/** The first key found twice in one object (decoded), or undefined. `body`: valid JSON, UTF-8. */
export function duplicateKey(body: Buffer): string | undefined {
  // one entry per open object or array (null), innermost last
  const open: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i] as number;
    if (byte === 0x22 /* " */) {
      let end = i + 1;
      let escaped = false;
      while (body[end] !== 0x22) {
        if (body[end] === 0x5c /* \ */) {
          escaped = true;
          end += 2;
        } else end += 1;
      }
      if (expectKey) {
        // a key spelt with escapes (`q\u0074y`) is the key it decodes to, as to every parser
        const key = escaped ? (JSON.parse(body.toString('utf8', i, end + 1)) as string) : body.toString('utf8', i + 1, end);
        const keys = open[open.length - 1] as Set<string>;
        if (keys.has(key)) return key;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (byte === 0x7b /* { */) {
      open.push(new Set());
      expectKey = true;
    } else if (byte === 0x5b /* [ */) {
      open.push(null);
      expectKey = false;
    } else if (byte === 0x7d /* } */ || byte === 0x5d /* ] */) {
      open.pop();
      expectKey = false;
    } else if (byte === 0x2c /* , */) expectKey = open[open.length - 1] instanceof Set;
  }
  return undefined;
}
