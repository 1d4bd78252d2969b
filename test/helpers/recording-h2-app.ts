// An HTTP/2 stream handler for test apps and upstreams that records each request it gets (its
// path, body and trailers) and answers 200 `ok` once the body has ended, and an inbound in front
// of such an app: what the request trailer tests compare. Also the OpenAPI spec those tests check against: /checked has a JSON
// body schema (an enforcing check reads the body first), /streamed has none (it streams).

import type http2 from 'node:http2';
import type t from 'tap';
import { startInbound, type InboundFixture } from './inbound-fixture.js';

export interface SeenRequest {
  path: string;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** A handler pushing what each stream brought onto `seen`. */
export function recordingStreamHandler(seen: SeenRequest[]): (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void {
  return (stream, headers) => {
    stream.on('error', () => {});
    const entry: SeenRequest = { path: String(headers[':path']), body: '', trailers: undefined };
    seen.push(entry);
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (entry.body += chunk));
    stream.on('trailers', (trailers) => (entry.trailers = trailers));
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
  };
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

/** An inbound on `codec` in front of an h2c app that records what it gets (closed at the test's end). */
export async function inboundWithRecordingApp(t: Tap, codec: 'node' | 'meshcar'): Promise<{ fx: InboundFixture; seen: SeenRequest[] }> {
  const seen: SeenRequest[] = [];
  const fx = await startInbound({ codec, app: { protocol: 'h2c', handler: recordingStreamHandler(seen) } });
  t.teardown(() => fx.close());
  return { fx, seen };
}

export const TRAILERS_SPEC = `openapi: 3.0.3
info: {title: trailers, version: "1"}
paths:
  /checked:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, required: [n], properties: {n: {type: integer}}}
      responses: {"200": {description: ok}}
  /streamed:
    post:
      responses: {"200": {description: ok}}
`;

/** A body /checked accepts. */
export const TRAILERS_BODY = JSON.stringify({ n: 7 });
