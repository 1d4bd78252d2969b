// The fields of a 101 (Switching Protocols) answer as the next hop is sent them, on both sides
// (the inbound relaying its app's 101 to the caller, the outbound relaying the upstream's to its
// app). A proxy removes the fields Connection names and the hop-by-hop ones (RFC 9110 §7.6.1):
// the other answers to an upgrade, and every upgrade request, already went so, but a 101 was
// copied byte for byte, so an app's `Connection: upgrade, x-hop` with `X-Hop: secret` (and its
// Keep-Alive, TE, Trailer...) crossed the mesh to the calling app. What the switch needs goes
// on, in the order sent: Upgrade, the protocol's own fields (Sec-WebSocket-Accept...), and
// Connection as `Upgrade`.

import { connectionScoped, isHopByHop } from './hop-by-hop.js';

/** Not carried to the next hop: the hop-by-hop fields but Upgrade (Connection is written anew), and a length (a 101 has no body). */
function dropped(lower: string): boolean {
  return (isHopByHop(lower) && lower !== 'upgrade') || lower === 'content-length';
}

/**
 * `raw` (name, value, ...) of a 101 as the next hop reads it, less `also` (lower-case names), in
 * the order sent: the first Connection stays where it was, saying `Upgrade` alone (as sent when
 * that is all it said), the others go.
 */
export function switchingFields(raw: readonly string[], also?: ReadonlySet<string>): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'connection') continue;
    for (const name of connectionScoped(raw[i + 1] as string) ?? []) (named ??= new Set()).add(name);
  }
  const fields: string[] = [];
  let connectionSent = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      if (connectionSent) continue;
      connectionSent = true;
      const value = raw[i + 1] as string;
      fields.push(name, value.trim().toLowerCase() === 'upgrade' ? value : 'Upgrade');
      continue;
    }
    if (dropped(lower) || also?.has(lower) === true || (named?.has(lower) === true && lower !== 'upgrade')) continue;
    fields.push(name, raw[i + 1] as string);
  }
  return fields;
}

/** A 101's head as written to the next hop: its status line and `fields` (switchingFields). */
export function switchingHead(statusMessage: string | undefined, fields: readonly string[]): string {
  let head = `HTTP/1.1 101 ${statusMessage || 'Switching Protocols'}\r\n`;
  for (let i = 0; i + 1 < fields.length; i += 2) head += `${fields[i] as string}: ${fields[i + 1] as string}\r\n`;
  return `${head}\r\n`;
}
