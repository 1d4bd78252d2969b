// A caller's request trailers reach an h2c app also when the inbound's OpenAPI check (enforce)
// read and validated the request's JSON body first. The check replays the body it read to the
// app from a buffer, and the trailers were read from that replacement: an HTTP/2 caller's
// 'trailers' event had fired on its own stream during the read, with nobody listening, and an
// HTTP/1.1 caller's trailers were on its request, not on the buffer; the app got the body and
// an empty END_STREAM. The same requests to an operation with no body schema (streamed, not
// read) are the baseline. Both HTTP/2 codecs of the inbound's server; the filtering of
// trailers (no x-forwarded-client-cert from a caller) holds on the checked path too.

import t from 'tap';
import https from 'node:https';
import type http2 from 'node:http2';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { TRAILERS_BODY, TRAILERS_SPEC, inboundWithRecordingApp } from '../helpers/recording-h2-app.js';
import { h2Connect, startInbound } from '../helpers/inbound-fixture.js';

const FORGED = 'URI=spiffe://mesh.test/svc/admin';
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function fixture(t: Tap, codec: 'node' | 'meshcar') {
  const { fx, seen } = await inboundWithRecordingApp(t, codec);
  const spec = join(t.testdir(), 'spec.yaml');
  writeFileSync(spec, TRAILERS_SPEC);
  fx.inbound.setSchema(await loadGuard({ spec, mode: 'enforce', maxBodySize: 1024 }));
  return { fx, seen };
}

function h2Post(caller: http2.ClientHttp2Session, path: string, trailers: http2.OutgoingHttpHeaders): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const stream = caller.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' }, { waitForTrailers: true });
    let status = 0;
    let text = '';
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => resolve({ status, text }));
    stream.on('error', reject);
    stream.end(TRAILERS_BODY);
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an HTTP/2 caller's trailers reach the h2c app, with and without a body schema`, async (t) => {
    const { fx, seen } = await fixture(t, codec);
    const caller = await h2Connect(fx.port, await fx.tlsOptions());
    t.teardown(() => caller.destroy());
    for (const path of ['/streamed', '/checked']) {
      const answer = await h2Post(caller, path, { 'x-checksum': `sum-${path.slice(1)}`, 'grpc-status': '0', 'x-forwarded-client-cert': FORGED, 'x-request-id': 'forged-id' });
      t.equal(answer.status, 200, `${path}: answered by the app (${answer.text})`);
      const entry = seen.find((s) => s.path === path);
      t.equal(entry?.body, TRAILERS_BODY, `${path}: the body arrived whole`);
      t.match(entry?.trailers, { 'x-checksum': `sum-${path.slice(1)}`, 'grpc-status': '0' }, `${path}: the trailers arrived`);
      t.equal(entry?.trailers?.['x-forwarded-client-cert'], undefined, `${path}: no forged identity`);
      t.equal(entry?.trailers?.['x-request-id'], undefined, `${path}: no x-request-id from the caller`);
    }
    t.equal(fx.observer.requests.find((r) => r.path === '/checked')?.schema?.violation, undefined, 'the checked body passed');
  });
}

t.test("a chunked HTTP/1.1 caller's trailers reach the h2c app, with and without a body schema", async (t) => {
  const { fx, seen } = await fixture(t, 'meshcar');
  const tlsOptions = await fx.tlsOptions();
  for (const path of ['/streamed', '/checked']) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: fx.port, method: 'POST', path, agent: false, ALPNProtocols: ['http/1.1'], headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', trailer: 'x-checksum' }, ...(tlsOptions as https.RequestOptions) },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(TRAILERS_BODY.slice(0, 4));
      req.addTrailers({ 'x-checksum': `sum-${path.slice(1)}`, authorization: 'Bearer t', 'x-forwarded-client-cert': FORGED });
      req.end(TRAILERS_BODY.slice(4));
    });
    t.equal(status, 200, `${path}: answered by the app`);
    const entry = seen.find((s) => s.path === path);
    t.equal(entry?.body, TRAILERS_BODY, `${path}: the body arrived whole`);
    t.equal(entry?.trailers?.['x-checksum'], `sum-${path.slice(1)}`, `${path}: the trailer arrived`);
    t.equal(entry?.trailers?.authorization, undefined, `${path}: a field that may not be a trailer did not`);
    t.equal(entry?.trailers?.['x-forwarded-client-cert'], undefined, `${path}: nor a forged identity`);
  }
});
