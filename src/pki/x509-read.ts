// Reading fields Node's X509Certificate does not hand over ready-made.

import type { X509Certificate } from 'node:crypto';

/**
 * URI subject alternative names. Node lists SANs as "URI:a, DNS:b" and quotes (JSON) any entry
 * that holds a comma or quote, so a crafted SAN cannot split into two entries here.
 */
export function uriSans(cert: X509Certificate): string[] {
  const text = cert.subjectAltName;
  if (!text) return [];
  const uris: string[] = [];
  const entry = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const match of text.matchAll(entry)) {
    if (match[1] !== 'URI') continue;
    const raw = match[2] as string;
    uris.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return uris;
}
