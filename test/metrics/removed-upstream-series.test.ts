// An upstream a reload removes (or renames) leaves /metrics: its address gauge at once, its
// session and stream gauges once a request still held on its retired pool has ended. Kept,
// each name an operator ever used left meshcar_upstream_sessions and
// meshcar_upstream_active_streams series at 0 for good (the reload review: 20 renames, 20 of
// each). A real Sidecar in-process, its config file rewritten and reloaded, real mTLS upstreams.

import t from 'tap';
import http from 'node:http';
import type http2 from 'node:http2';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { Sidecar } from '../../src/sidecar.js';
import { makePki, request, startUpstream, TD, UPSTREAM_ID } from '../helpers/outbound-fixture.js';
import { frontendFilesHead } from '../helpers/files-frontend.js';
import { freePort } from '../helpers/process.js';

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      })
      .on('error', reject);
  });
}

/** The upstream label values of a family's samples on the page. */
function upstreamsOf(page: string, family: string): string[] {
  return [...page.matchAll(new RegExp(`^${family}\\{upstream="([^"]*)"\\}`, 'gm'))].map((m) => m[1] as string).sort();
}

t.test('renamed upstreams leave no session or stream series behind, once their held request ends', async (t) => {
  const pki = await makePki(TD);
  const dir = t.testdir();
  const held: http2.ServerHttp2Stream[] = [];
  let holding = true;
  const upstream = await startUpstream(pki, {
    handler: (stream) => {
      stream.on('error', () => {});
      stream.resume();
      if (holding) held.push(stream);
      else stream.respond({ ':status': 200 }, { endStream: true });
    },
  });
  t.teardown(() => upstream.close());
  const head = await frontendFilesHead(dir, pki);
  const file = join(dir, 'frontend.yaml');
  const write = (name: string, extra: string[] = []) =>
    writeFile(file, [
      ...head,
      `    ${name}:`,
      `      endpoints: [127.0.0.1:${upstream.port}]`,
      `      identity: ${UPSTREAM_ID}`,
      'admin:',
      '  listen: 127.0.0.1:0',
      ...extra,
      '',
    ].join('\n'));
  await write('u0');
  const sidecar = new Sidecar(await loadSidecarConfig(file), pino({ level: 'silent' }));
  const addresses = await sidecar.start();
  t.teardown(() => sidecar.stop());
  const outbound = addresses.outbound?.port as number;
  const admin = addresses.admin.port;

  // a request held on u0 while a reload renames it
  const first = request(outbound, { path: '/held', headers: { host: 'u0' } });
  for (let i = 0; i < 500 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.equal(held.length, 1, 'the request is held at the upstream');
  await write('u1');
  t.match(await sidecar.reload(), { ok: true }, 'renamed to u1');
  let page = await get(admin, '/metrics');
  t.same(upstreamsOf(page, 'meshcar_upstream_active_streams'), ['u0'], "u0's stream series stays while its request is in flight");
  t.same(upstreamsOf(page, 'meshcar_upstream_endpoints'), ['u1'], "u0's address series goes at once");
  // metrics.requests off and on again while u0's request is held: the new observers are told
  // u0 is removed (handed over unmarked, its series stayed at 0 for good)
  await write('u1', ['metrics:', '  requests: false']);
  t.match(await sidecar.reload(), { ok: true }, 'metrics.requests off');
  await write('u1');
  t.match(await sidecar.reload(), { ok: true }, 'and on again');
  t.same(upstreamsOf(await get(admin, '/metrics'), 'meshcar_upstream_active_streams'), ['u0'], "u0's held request is counted again");
  held[0]?.respond({ ':status': 200 }, { endStream: true });
  t.equal((await first).status, 200, 'the held request ends 200');
  const until = Date.now() + 5000;
  while (Date.now() < until && (upstreamsOf((page = await get(admin, '/metrics')), 'meshcar_upstream_sessions').length > 0 || upstreamsOf(page, 'meshcar_upstream_active_streams').length > 0)) await new Promise((r) => setTimeout(r, 20));
  t.same(upstreamsOf(page, 'meshcar_upstream_sessions'), [], "u0's session series gone once its session closed");
  t.same(upstreamsOf(page, 'meshcar_upstream_active_streams'), [], "u0's stream series gone");

  // ten more renames, a request through each name: only the last name's series are left
  holding = false;
  for (let i = 2; i <= 11; i++) {
    await write(`u${i}`);
    t.match(await sidecar.reload(), { ok: true });
    t.equal((await request(outbound, { path: '/x', headers: { host: `u${i}` } })).status, 200, `u${i} answers`);
  }
  const last = Date.now() + 5000;
  while (Date.now() < last && upstreamsOf((page = await get(admin, '/metrics')), 'meshcar_upstream_sessions').length > 1) await new Promise((r) => setTimeout(r, 20));
  t.same(upstreamsOf(page, 'meshcar_upstream_sessions'), ['u11'], 'sessions: the live name only');
  t.same(upstreamsOf(page, 'meshcar_upstream_active_streams'), ['u11'], 'streams: the live name only');
  t.same(upstreamsOf(page, 'meshcar_upstream_endpoints'), ['u11'], 'addresses: the live name only');
});

t.test('a removed upstream leaves no ejected-endpoints series behind', async (t) => {
  const pki = await makePki(TD);
  const dir = t.testdir();
  const upstream = await startUpstream(pki);
  t.teardown(() => upstream.close());
  // a port nothing listens on: its connect fails, and one failure ejects it
  const deadPort = await freePort();
  const head = await frontendFilesHead(dir, pki);
  const file = join(dir, 'frontend.yaml');
  const write = (name: string) =>
    writeFile(file, [
      ...head,
      `    ${name}:`,
      `      endpoints: [127.0.0.1:${deadPort}, 127.0.0.1:${upstream.port}]`,
      `      identity: ${UPSTREAM_ID}`,
      '      outlierDetection: {consecutiveFailures: 1, maxEjectionPercent: 100}',
      'admin:',
      '  listen: 127.0.0.1:0',
      '',
    ].join('\n'));
  await write('e0');
  const sidecar = new Sidecar(await loadSidecarConfig(file), pino({ level: 'silent' }));
  const addresses = await sidecar.start();
  t.teardown(() => sidecar.stop());
  const outbound = addresses.outbound?.port as number;
  const admin = addresses.admin.port;
  let page = '';
  for (let i = 0; i < 20 && !/^meshcar_upstream_ejected_endpoints\{upstream="e0"\} 1$/m.test(page); i++) {
    await request(outbound, { path: '/x', headers: { host: 'e0' } });
    page = await get(admin, '/metrics');
  }
  t.match(page, /^meshcar_upstream_ejected_endpoints\{upstream="e0"\} 1$/m, 'the dead endpoint is ejected');
  await write('e1');
  t.match(await sidecar.reload(), { ok: true }, 'renamed to e1');
  t.same(upstreamsOf(await get(admin, '/metrics'), 'meshcar_upstream_ejected_endpoints'), [], "e0's ejection series goes with it");
});
