// The protocols an Upgrade header offers (RFC 9110 §7.8: a comma-separated list, each a name
// with an optional /version). Both sidecars refuse an upgrade to h2c wherever it is listed:
// the app would switch on `Upgrade: websocket, h2c` as readily as on `Upgrade: h2c`, and an h2c
// tunnel would carry later requests past the per-request policy. (The outbound serves an offer
// of h2c alone as the plain request it also is, passing no Upgrade on: h2c-offer-ignored.ts.)
// Also says what a 101 that is no switch lacks.

/** Whether `upgrade` lists h2c among its protocols (any case, any version, any position). */
export function offersH2c(upgrade: string | string[] | undefined): boolean {
  if (upgrade === undefined) return false;
  const value = Array.isArray(upgrade) ? upgrade.join(',') : upgrade;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === 'h2c' || name.startsWith('h2c/')) return true;
  }
  return false;
}

/** Whether `upgrade` offers h2c and nothing else (the offer a client makes of HTTP/2 alone: Java's HttpClient, curl --http2). */
export function offersOnlyH2c(upgrade: string | string[] | undefined): boolean {
  const names = protocolNames(upgrade);
  return names.length > 0 && names.every((name) => name === 'h2c');
}

/** The protocol names of an Upgrade field, lower-cased, versions left out. */
function protocolNames(upgrade: string | string[] | undefined): string[] {
  if (upgrade === undefined) return [];
  const value = Array.isArray(upgrade) ? upgrade.join(',') : upgrade;
  return value.split(',').map((token) => token.trim().toLowerCase().split('/')[0] as string).filter((name) => name !== '');
}

/**
 * A protocol a 101 switches to that the request did not offer, as the 101 names it (RFC 9110
 * §7.8: a server must not switch to one); undefined when every one it names was offered. A
 * WebSocket request answered `Upgrade: h2c` opened an h2c tunnel, which both sidecars refuse
 * to offer: later requests on it would pass the per-request policy.
 */
export function unofferedProtocol(offered: string | string[] | undefined, answered: string | string[] | undefined): string | undefined {
  const offers = new Set(protocolNames(offered));
  return protocolNames(answered).find((name) => !offers.has(name));
}

/**
 * What a 101 that node:http did not take for a switch lacks, in words for the error message:
 * RFC 9110 §15.2.2 has a 101 name the new protocol in Upgrade, and §7.8 has whoever sends
 * Upgrade list `upgrade` in Connection; node:http switches only with both. Said as it is, so
 * that a 101 with Upgrade but without the Connection option is not reported as one without
 * Upgrade.
 */
export function switchFieldsMissing(headers: { readonly upgrade?: string | string[]; readonly connection?: string | string[] }): string {
  if (headers.upgrade === undefined) return 'without an Upgrade field';
  const connection = headers.connection;
  const options = (Array.isArray(connection) ? connection.join(',') : (connection ?? '')).split(',');
  if (!options.some((option) => option.trim().toLowerCase() === 'upgrade')) return 'without `upgrade` in its Connection field';
  return 'that was no protocol switch';
}
