// Which media entry of an operation's request body a Content-Type selects, as OpenAPI's
// media-type ranges read: the exact type, then its structured suffix's range, then `type/*`,
// then `*/*`. Used by the per-request check (spec.ts).

import type { MediaRule } from './operation.js';

/** `Application/JSON; charset=utf-8` → `application/json`. */
export function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * The media entry for a Content-Type: exact, then its structured suffix's range
 * (`application/*+json` for `application/merge-patch+json`: Swashbuckle lists one beside
 * application/json, and a +json body sent to it was 415), then `type/*`, then `*\/*`.
 */
export function mediaFor(media: readonly MediaRule[], contentType: string | undefined): MediaRule | undefined {
  if (contentType === undefined) return undefined;
  const type = mediaType(contentType);
  const major = type.split('/')[0];
  const plus = type.lastIndexOf('+');
  // application/grpc+json too: an app that reads application/*+json as JSON parses it (operation.ts isGrpcType)
  const suffixed = plus > type.indexOf('/') ? `${major}/*${type.slice(plus)}` : undefined;
  return (
    media.find((m) => m.range === type) ??
    (suffixed === undefined ? undefined : media.find((m) => m.range === suffixed)) ??
    media.find((m) => m.range === `${major}/*`) ??
    media.find((m) => m.range === '*/*')
  );
}
