// The warning for identity keys that do nothing: with `identity.files` (certificates written and
// renewed by something else), `dir`, `ttl` and `renewal` are read and then ignored, since only an
// SVID from the meshcar CA is kept, asked for with a lifetime and renewed by the sidecar. A user
// who set them most likely expects renewal to happen: the file stays valid (a config moved from
// identity.ca to identity.files may keep them), and `meshcar check`, the sidecar's start and each
// reload say which key does nothing, as the other config warnings do.

import { CA_ONLY_IDENTITY_KEYS } from './identity-config.js';
import type { SidecarConfig } from './sidecar-config.js';

/** One line per key of `identity` that `identity.files` leaves unused; `file` as the user named it. */
export function filesIdentityWarnings(config: SidecarConfig, file: string): string[] {
  if (config.identity.source !== 'files') return [];
  return config.identity.unusedKeys.map(
    (key) => `${file}: identity.${key} does nothing with identity.files: it sets ${CA_ONLY_IDENTITY_KEYS[key]}; the files are renewed by whatever writes them (meshcar reloads them when they change): remove it, or use identity.ca`,
  );
}
