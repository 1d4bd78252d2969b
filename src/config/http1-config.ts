// The top-level `http1` key: which HTTP/1.1 client carries the inbound's requests to an
// `http://` app. `meshcar` is the own pool over Node's llhttp (src/inbound/app-pool.ts), the
// default: about 2-3 µs less CPU per request than undici's, and undici (with its WebAssembly
// parser) never loaded. `undici` is undici's Pool, as before, selectable as
// `http1: {appClient: undici}` and re-run over the same tests (the app-client-undici-*.test.ts
// files). Requests with `Expect`, `Upgrade` or a target other than a path go over node:http
// with either.

import type { YamlValue } from './yaml-value.js';

/** The keys of the maps read here (src/config/misplaced-keys.ts tells a key written elsewhere where it goes). */
export const HTTP1_KEYS: readonly string[] = ['appClient'];

export const HTTP1_APP_CLIENTS = ['meshcar', 'undici'] as const;
export type Http1AppClient = (typeof HTTP1_APP_CLIENTS)[number];

export interface Http1Config {
  readonly appClient: Http1AppClient;
}

export const DEFAULT_HTTP1: Http1Config = Object.freeze({ appClient: 'meshcar' });

export function readHttp1(value: YamlValue): Http1Config | undefined {
  const map = value.map(HTTP1_KEYS);
  if (!map) return undefined;
  const appClient = map.optional('appClient', readAppClient, DEFAULT_HTTP1.appClient);
  return appClient === undefined ? undefined : { appClient };
}

function readAppClient(value: YamlValue): Http1AppClient | undefined {
  const text = value.string(`an HTTP/1.1 client (${HTTP1_APP_CLIENTS.join(' or ')})`);
  if (text === undefined) return undefined;
  const client = HTTP1_APP_CLIENTS.find((c) => c === text);
  return client ?? value.report(`${JSON.stringify(text)} is not an HTTP/1.1 app client; use one of ${HTTP1_APP_CLIENTS.join(', ')}`);
}
