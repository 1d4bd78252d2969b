// The top-level `http2` key: which HTTP/2 implementation carries the sidecar-to-sidecar hop
// (issue 9). `meshcar` is the own codec in src/h2/, the default since every test passes with it
// (the rule for flipping it); it costs about 0.6 of the other's CPU per request and peak
// memory (README, Benchmarks). `node` is Node's core http2 (inbound server) and http2-wrapper
// (outbound sessions, loaded only with this codec), still selectable as `http2: {codec: node}`
// and re-run over the same tests (the codec-node-*.test.ts files).

import type { YamlValue } from './yaml-value.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const HTTP2_KEYS: readonly string[] = ['codec'];

export const HTTP2_CODECS = ['meshcar', 'node'] as const;
export type Http2Codec = (typeof HTTP2_CODECS)[number];

export interface Http2Config {
  readonly codec: Http2Codec;
}

export const DEFAULT_HTTP2: Http2Config = Object.freeze({ codec: 'meshcar' });

export function readHttp2(value: YamlValue): Http2Config | undefined {
  const map = value.map(HTTP2_KEYS);
  if (!map) return undefined;
  const codec = map.optional('codec', readCodec, DEFAULT_HTTP2.codec);
  return codec === undefined ? undefined : { codec };
}

function readCodec(value: YamlValue): Http2Codec | undefined {
  const text = value.string(`an HTTP/2 codec (${HTTP2_CODECS.join(' or ')})`);
  if (text === undefined) return undefined;
  const codec = HTTP2_CODECS.find((c) => c === text);
  return codec ?? value.report(`${JSON.stringify(text)} is not an HTTP/2 codec; use one of ${HTTP2_CODECS.join(', ')}`);
}
