// HTTP/2 peers meshcar did not write, on both codecs (issue 9): nghttp2's own client (`nghttp`)
// and load generator (`h2load`) against the inbound with a client certificate from our CA, and
// HAProxy as the upstream HTTP/2 server of an outbound (HAProxy terminates the mTLS with the
// upstream's SVID and answers from the app). Each case runs once with http2.codec node and once
// with meshcar, in real processes; the tools come from Debian (nghttp2-client, haproxy), which
// `make tools` installs.

import t from 'tap';
import { join } from 'node:path';
import { spawn, execFile } from 'node:child_process';
import { writeFile, readFile } from 'node:fs/promises';
import { startSidecar, waitFor, metricValue } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { freePort } from '../helpers/process.js';
import { meshFixture } from '../helpers/mesh-fixture.js';

function run(cmd: string, args: string[], timeout = 30_000): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr, stdout }));
  });
}

const mesh = meshFixture(t);

const ALLOW_FRONTEND = ['  authorize:', '    - from: [spiffe://mesh.local/svc/frontend]'].join('\n');

for (const codec of ['node', 'meshcar'] as const) {
  t.test(`codec ${codec}: nghttp against the inbound with a client certificate from our CA; h2load through the pair`, async (t) => {
    // the offline SVID is issued while orders starts, and frontend starts while nghttp runs
    const [orders, svid] = await Promise.all([startSidecar(mesh.ca, { service: 'orders', codec, inbound: { app: `http://127.0.0.1:${mesh.app.port}`, authorize: ALLOW_FRONTEND } }), mesh.ca.issue('frontend')]);
    t.teardown(() => orders.stop());
    const frontendStarted = startSidecar(mesh.ca, { service: 'frontend', codec, upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }] });
    t.teardown(async () => (await frontendStarted.catch(() => undefined))?.stop('SIGKILL'));
    const tlsArgs = [`--cert=${join(svid.dir, 'svid.crt')}`, `--key=${join(svid.dir, 'svid.key')}`];
    const base = `https://127.0.0.1:${orders.inboundPort}`;

    // nghttp: a GET, a 3 MiB upload and a 3 MB answer (flow control both ways against nghttp2)
    const get = await run('nghttp', ['-v', ...tlsArgs, `${base}/headers`]);
    t.equal(get.code, 0, 'nghttp GET exits 0');
    t.match(get.out, /:status: 200/, 'nghttp sees 200');
    t.match(get.out, /URI=spiffe:\/\/mesh\.local\/svc\/frontend/, 'the app saw the caller identity nghttp presented');
    t.notMatch(get.out, /recv (GOAWAY|RST_STREAM)/, 'no GOAWAY or reset from the sidecar during an ordinary exchange');
    const upload = join(t.testdir(), 'upload.bin');
    const bytes = Buffer.alloc(3 << 20, 'meshcar-');
    await writeFile(upload, bytes);
    const echoed = await run('nghttp', [...tlsArgs, '-d', upload, `${base}/sink`]);
    t.equal(echoed.code, 0, echoed.out.slice(0, 500));
    t.match(echoed.stdout, new RegExp(`^\\{"bytes":${bytes.length}\\}`), 'the app received the whole 3 MiB nghttp uploaded (past the 1 MiB stream window)');
    const big = await run('nghttp', [...tlsArgs, `${base}/bytes/3000000`]);
    t.equal(big.code, 0);
    t.equal(big.stdout.length, 3_000_000, 'nghttp received a 3 MB answer whole (window updates as it reads)');

    // h2load (which cannot present a client certificate) drives the pair: h2c into the outbound,
    // 2000 requests over 4 connections of 16 streams each, carried by the codec on the mTLS hop
    const frontend = await frontendStarted;
    const seenBefore = mesh.app.seen.length;
    const load = await run('h2load', ['-n', '2000', '-c', '4', '-m', '16', '-H', ':authority: orders', `http://127.0.0.1:${frontend.outboundPort}/headers`], 60_000);
    t.equal(load.code, 0, 'h2load exits 0');
    t.match(load.out, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored/, load.out.split('\n').find((l) => l.startsWith('requests:')) ?? load.out);
    t.match(load.out, /status codes: 2000 2xx/);
    t.match(load.out, /Application protocol: h2c/);
    t.equal(metricValue((await frontend.admin('/metrics')).body, 'meshcar_upstream_sessions{upstream="orders"}'), 1, 'one session carried them all');
    t.equal(mesh.app.seen.length - seenBefore, 2000, 'the app received each of the 2000 requests once');
  });

  t.test(`codec ${codec}: HAProxy as the upstream HTTP/2 server of an outbound`, async (t) => {
    const port = await freePort();
    // frontend starts while HAProxy's files are made (its first calls wait for HAProxy below)
    const frontendStarted = startSidecar(mesh.ca, {
      service: 'frontend',
      codec,
      upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${port}`], identity: 'spiffe://mesh.local/svc/orders' }],
    });
    t.teardown(async () => (await frontendStarted.catch(() => undefined))?.stop('SIGKILL'));
    const svid = await mesh.ca.issue('orders');
    const dir = t.testdir();
    const pem = join(dir, 'haproxy.pem');
    // HAProxy wants leaf, chain and key in one file
    await writeFile(pem, (await readFile(join(svid.dir, 'svid.crt'), 'utf8')) + (await readFile(join(svid.dir, 'svid.key'), 'utf8')));
    const config = join(dir, 'haproxy.cfg');
    await writeFile(
      config,
      [
        'global',
        '  maxconn 200',
        'defaults',
        '  mode http',
        '  timeout connect 5s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend mtls',
        `  bind 127.0.0.1:${port} ssl crt ${pem} ca-file ${join(svid.dir, 'bundle.pem')} verify required alpn h2`,
        '  http-response set-header x-served-by haproxy',
        '  default_backend app',
        'backend app',
        `  server app 127.0.0.1:${mesh.app.port}`,
        '',
      ].join('\n'),
    );
    const checked = await run('haproxy', ['-c', '-f', config]);
    t.equal(checked.code, 0, checked.out);
    const haproxy = spawn('haproxy', ['-db', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let haproxyLog = '';
    haproxy.stderr.on('data', (c: Buffer) => (haproxyLog += c.toString()));
    t.teardown(() => {
      haproxy.kill('SIGKILL');
    });
    const frontend = await frontendStarted;
    const out = (options: Parameters<typeof request>[1]) => request(frontend.outboundPort, { ...options, headers: { host: 'orders', ...options.headers } });
    // HAProxy binds asynchronously: the first call succeeds once it listens (retries cover the gap)
    await waitFor(async () => (await out({ path: '/headers' }).catch(() => ({ status: 0 }))).status === 200, 10_000, `HAProxy serving (${haproxyLog})`);

    const res = await out({ path: '/headers' });
    t.equal(res.status, 200);
    t.equal(res.headers['x-served-by'], 'haproxy', 'answered through HAProxy');
    const body = Buffer.alloc(2 << 20, 'h2-flow-');
    const echoed = await out({ method: 'POST', path: '/echo', body, headers: { 'content-type': 'application/octet-stream' } });
    t.equal(echoed.status, 200);
    t.ok(echoed.body.equals(body), '2 MiB echoed byte for byte through HAProxy (flow control against HAProxy both ways)');
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => out({ path: `/headers?i=${i}` })));
    t.ok(many.every((r) => r.status === 200), '200 concurrent calls, all 200');
    const sessions = metricValue((await frontend.admin('/metrics')).body, 'meshcar_upstream_sessions{upstream="orders"}');
    t.ok(sessions !== undefined && sessions >= 1 && sessions <= 2, `the 200 calls shared ${sessions} session(s) to HAProxy`);
  });
}
