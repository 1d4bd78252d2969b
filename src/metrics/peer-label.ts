// The `peer` label of an inbound caller: its service name for a /svc/ ID, else its whole
// SPIFFE ID. A SPIFFE ID may be 2,048 bytes, and the CA or an external one (identity.files:
// SPIRE and the like) may sign any path of the trust domain; the label is repeated in every
// series of every request family of that caller (up to ~1,000 endpoints, 17 lines each for a
// histogram), so one caller with a 2 KB ID made tens of MB of /metrics. A label longer than
// MAX_PEER_LABEL keeps its first characters and a hash of the whole ID: distinct IDs stay
// distinct series (the peer cap still bounds how many), and the size no longer follows the ID.

import { createHash } from 'node:crypto';
import { serviceNameOf, type SpiffeId } from '../identity/spiffe-id.js';

/** The longest peer label (characters), as long as the longest service name (spiffe-id.ts) and route (route-templates.ts). */
export const MAX_PEER_LABEL = 128;
const HASH_CHARS = 16;

/** The peer label of a caller's SPIFFE ID, at most MAX_PEER_LABEL characters. */
export function peerLabel(id: SpiffeId): string {
  const label = serviceNameOf(id) ?? id.uri;
  if (label.length <= MAX_PEER_LABEL) return label;
  const hash = createHash('sha256').update(id.uri).digest('hex').slice(0, HASH_CHARS);
  return `${label.slice(0, MAX_PEER_LABEL - HASH_CHARS - 1)}~${hash}`;
}
