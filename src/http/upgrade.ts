// The protocols an Upgrade header offers (RFC 9110 §7.8: a comma-separated list, each a name
// with an optional /version). Both sidecars refuse an upgrade to h2c wherever it is listed:
// the app would switch on `Upgrade: websocket, h2c` as readily as on `Upgrade: h2c`, and an h2c
// tunnel would carry later requests past the per-request policy.

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
