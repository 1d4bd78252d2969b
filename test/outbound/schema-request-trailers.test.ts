// An app's request trailers reach the upstream also when the outbound's OpenAPI check (enforce)
// read and validated the call's JSON body first (the body then goes upstream as one piece, as a
// replay would). From an h2c app, the trailers were listened for only once the attempt existed,
// after the check's read, during which they had already come: the upstream got the body and an
// empty END_STREAM. The same calls to an operation with no body schema (streamed, not read) are
// the baseline, and so are an HTTP/1.1 app's chunked trailers (on its request once its body
// ended). Both HTTP/2 codecs of the upstream sessions.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadGuard } from '../../src/schema/guard.js';
import { TRAILERS_BODY, TRAILERS_SPEC, recordingStreamHandler, type SeenRequest } from '../helpers/recording-h2-app.js';
import { h2cRequest, makePki, startOutbound, startUpstream } from '../helpers/outbound-fixture.js';

type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

async function fixture(t: Tap, codec: 'meshcar' | 'node') {
  const seen: SeenRequest[] = [];
  const pki = await makePki('mesh.test');
  const upstream = await startUpstream(pki, {
    handler: recordingStreamHandler(seen),
  });
  const fx = await startOutbound(pki, [{ name: 'payments', endpoints: [`127.0.0.1:${upstream.port}`] }], { codec });
  t.teardown(async () => {
    await fx.close();
    await upstream.close();
  });
  const spec = join(t.testdir(), 'spec.yaml');
  writeFileSync(spec, TRAILERS_SPEC);
  fx.outbound.setSchemas(new Map([['payments', await loadGuard({ spec, mode: 'enforce', maxBodySize: 1024 })]]));
  return { fx, seen };
}

/** A chunked HTTP/1.1 call with trailers, its body in two chunks. */
function http1Post(port: number, path: string, trailers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: { host: 'payments', 'content-type': 'application/json', 'transfer-encoding': 'chunked', trailer: Object.keys(trailers).join(', ') } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.write(TRAILERS_BODY.slice(0, 4));
    req.addTrailers(trailers);
    req.end(TRAILERS_BODY.slice(4));
  });
}

for (const codec of ['meshcar', 'node'] as const) {
  t.test(`${codec} codec: an h2c app's trailers reach the upstream, with and without a body schema`, async (t) => {
    const { fx, seen } = await fixture(t, codec);
    const session = http2.connect(`http://127.0.0.1:${fx.port}`);
    session.on('error', () => {});
    t.teardown(() => session.destroy());
    for (const path of ['/streamed', '/checked']) {
      const answer = await h2cRequest(session, { ':method': 'POST', ':path': path, 'content-type': 'application/json' }, TRAILERS_BODY, { 'x-checksum': `sum-${path.slice(1)}`, 'grpc-status': '0' });
      t.equal(answer.status, 200, `${path}: answered by the upstream (${answer.body.toString()})`);
      const entry = seen.find((s) => s.path === path);
      t.equal(entry?.body, TRAILERS_BODY, `${path}: the body arrived whole`);
      t.match(entry?.trailers, { 'x-checksum': `sum-${path.slice(1)}`, 'grpc-status': '0' }, `${path}: the trailers arrived`);
    }
    t.equal(fx.observer.requests.find((r) => r.path === '/checked')?.schema?.violation, undefined, 'the checked body passed');
  });

  t.test(`${codec} codec: an HTTP/1.1 app's chunked trailers reach the upstream, with and without a body schema`, async (t) => {
    const { fx, seen } = await fixture(t, codec);
    for (const path of ['/streamed', '/checked']) {
      const answer = await http1Post(fx.port, path, { 'x-checksum': `sum-${path.slice(1)}` });
      t.equal(answer.status, 200, `${path}: answered by the upstream (${answer.text})`);
      const entry = seen.find((s) => s.path === path);
      t.equal(entry?.body, TRAILERS_BODY, `${path}: the body arrived whole`);
      t.equal(entry?.trailers?.['x-checksum'], `sum-${path.slice(1)}`, `${path}: the trailer arrived`);
    }
  });
}
