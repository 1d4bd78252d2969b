// doctor binds the sidecar's own listen addresses (inbound.listen, outbound.listen) when no
// sidecar runs with its config: a port another program held passed as "all checks passed", and
// `meshcar run` then exited with listen_failed. A running sidecar's own ports are not checked.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { makePki } from '../helpers/pki.js';
import { freePort } from '../helpers/process.js';
import { loadSidecarConfig } from '../../src/config/sidecar-config.js';
import { checkListeners } from '../../src/doctor/listen.js';
import { formatResult } from '../../src/doctor/result.js';
import { runDoctor } from '../../src/doctor/index.js';

async function held(t: Tap.Test): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return (server.address() as AddressInfo).port;
}

async function config(t: Tap.Test, inboundPort: number, outboundPort: number, adminPort: number): Promise<string> {
  const pki = await makePki('mesh.local');
  const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
  const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
  const file = join(dir, 'orders.yaml');
  const app = await held(t); // a plain TCP port for inbound.app: doctor's app check is not this test's
  await writeFile(
    file,
    `service: orders\ntrustDomain: mesh.local\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\n` +
      `inbound: {listen: "127.0.0.1:${inboundPort}", app: "http://127.0.0.1:${app}"}\noutbound: {listen: "127.0.0.1:${outboundPort}", upstreams: {payments: {endpoints: ["127.0.0.1:${await freePort()}"], identity: "spiffe://mesh.local/svc/payments"}}}\n` +
      `admin: {listen: "127.0.0.1:${adminPort}"}\n`,
  );
  return file;
}

t.test('a listen address another program holds is a ✗ naming the key; a free one a ✓', async (t) => {
  const taken = await held(t);
  const file = await config(t, taken, await freePort(), await freePort());
  const results = await runDoctor(file, { timeoutMs: 1000 });
  const lines = results.map(formatResult);
  const inbound = lines.find((l) => l.includes(`inbound listen 127.0.0.1:${taken}`));
  t.match(inbound, /^✗ inbound listen .*EADDRINUSE.*meshcar run would exit \(listen_failed\) — fix: stop what listens there \(ss -ltnp names it\), or choose another inbound\.listen/, inbound);
  t.match(lines.find((l) => l.includes('outbound listen')), /^✓ outbound listen .*: free/, 'the free outbound port passes');
});

t.test("a running sidecar's own ports are not judged; with admin.listen port 0 a taken port is a warning", async (t) => {
  const taken = await held(t);
  const loaded = await loadSidecarConfig(await config(t, taken, await freePort(), await freePort()));
  t.same(await checkListeners(loaded, true), [], 'the sidecar found running: nothing checked');
  const unknown = (await checkListeners(loaded, 'unknown')).map(formatResult);
  t.match(unknown[0], /^! inbound listen .*EADDRINUSE.*unless it is this sidecar's own/);
});

t.test('a hung process on the admin port (perhaps this sidecar, stuck): its listen ports in use are warnings, not "stop what listens there"', async (t) => {
  const taken = await held(t);
  // the admin port takes connections and never answers
  const sockets: net.Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    silent.close();
  });
  const file = await config(t, taken, await freePort(), (silent.address() as AddressInfo).port);
  const lines = (await runDoctor(file, { timeoutMs: 1000 })).map(formatResult);
  t.match(lines.find((l) => l.includes(`inbound listen 127.0.0.1:${taken}`)), /^! inbound listen .*EADDRINUSE.*unless it is this sidecar's own/, 'a warning');
});

t.test('a program answering no HTTP on the admin port (an SSH banner) is not this sidecar: its listen ports in use stay ✗', async (t) => {
  const taken = await held(t);
  const banner = net.createServer((s) => s.end('SSH-2.0-OpenSSH_9.2\r\n'));
  banner.listen(0, '127.0.0.1');
  await once(banner, 'listening');
  t.teardown(() => banner.close());
  const file = await config(t, taken, await freePort(), (banner.address() as AddressInfo).port);
  const lines = (await runDoctor(file, { timeoutMs: 1000 })).map(formatResult);
  t.match(lines.find((l) => l.includes(`inbound listen 127.0.0.1:${taken}`)), /^✗ inbound listen .*EADDRINUSE/, 'a fail');
});
