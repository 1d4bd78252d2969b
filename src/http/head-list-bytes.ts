// The size of a decoded HTTP/2 head as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 7541 §4.1:
// name + value + 32 per field), from the flat [name, value, ...] list both codecs give. For
// heads Node's codec decoded: it holds one to a number of fields but, on streams opened before
// the peer acknowledged our SETTINGS (which a peer never has to do), not in bytes, so an HPACK
// bomb (a 4 KB field in the dynamic table, then one byte per reference) decodes to about
// 1 MB within 256 fields. The callers check the list against their byte limit.

export function headListBytes(raw: readonly string[]): number {
  let bytes = 0;
  for (let i = 0; i < raw.length; i++) bytes += (raw[i] as string).length;
  return bytes + 16 * raw.length; // 32 per field: two entries each
}

/** The same size for a head Node gives as an object (trailers come only so): an array value is a field each. */
export function headObjectBytes(head: Readonly<Record<string, string | string[] | number | undefined>>): number {
  let bytes = 0;
  for (const name in head) {
    const value = head[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const one of value) bytes += name.length + one.length + 32;
    else bytes += name.length + String(value).length + 32;
  }
  return bytes;
}

/** The fields of a head given as an object (an array value is a field each) or a flat [name, value, ...] list. */
export function headFields(head: Readonly<Record<string, string | readonly string[] | number | undefined>> | readonly string[]): number {
  if (Array.isArray(head)) return head.length / 2;
  let fields = 0;
  for (const name in head) {
    const value = (head as Readonly<Record<string, string | readonly string[] | number | undefined>>)[name];
    if (value !== undefined) fields += Array.isArray(value) ? value.length : 1;
  }
  return fields;
}
