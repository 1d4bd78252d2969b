// A port another process holds, at start (review finding 13): the sidecar and the CA stop with
// exit 1 and one line that names the listener, the address, what to do, and the stable code
// listen_failed (the sidecar's log line carries it too), not config_invalid: the config may be
// right.

import t from 'tap';
import { createServer, type Server } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePki } from './helpers/pki.js';
import { startMeshcar } from './helpers/process.js';
import { initCaDirectory } from '../src/ca/store.js';

function occupiedPort(t: Tap.Test): Promise<number> {
  const server: Server = createServer();
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

// workers: 2 as well: a worker's failed bind reaches the primary as a message, whose code it
// kept only when it was config_invalid (any other was 'internal', and the stderr line lost its
// "(listen_failed)")
for (const workers of [1, 2]) {
  t.test(`the inbound port in use, workers: ${workers}: exit 1, listen_failed in the line and the log`, async (t) => {
    const pki = await makePki('mesh.local');
    const leaf = await pki.issue('spiffe://mesh.local/svc/orders');
    const dir = t.testdir({ 'svid.crt': leaf.chainPem, 'svid.key': leaf.privateKeyPem, 'bundle.pem': pki.bundlePem });
    const taken = await occupiedPort(t);
    await writeFile(
      join(dir, 'orders.yaml'),
      `service: orders\ntrustDomain: mesh.local\nworkers: ${workers}\nidentity: {files: {cert: ${join(dir, 'svid.crt')}, key: ${join(dir, 'svid.key')}, bundle: ${join(dir, 'bundle.pem')}}}\n` +
        `inbound: {listen: "127.0.0.1:${taken}", app: "http://127.0.0.1:1"}\nadmin: {listen: "127.0.0.1:0"}\n`,
    );
    const proc = startMeshcar(['run', '--config', join(dir, 'orders.yaml')]);
    t.equal(await proc.exited(), 1, 'exit 1');
    t.equal(proc.stderr.length, 1, proc.stderr.join('\n'));
    // one process says listen EADDRINUSE, a worker (node:cluster binds in the primary) bind EADDRINUSE
    t.match(proc.stderr[0], new RegExp(`^meshcar: inbound cannot listen on 127\\.0\\.0\\.1:${taken} \\(inbound\\.listen\\): (listen|bind) EADDRINUSE.*another process holds the port.*\\(listen_failed\\)$`));
    const why = proc.lines.find((line) => /^could not start/.test(String(line.msg)));
    t.equal(why?.code, 'listen_failed', `the log line's code: ${JSON.stringify(why)}`);
  });
}

t.test('the CA port in use: exit 1, listen_failed in the line', async (t) => {
  const dir = t.testdir();
  await initCaDirectory(join(dir, 'ca'), 'mesh.local', { force: false });
  const taken = await occupiedPort(t);
  await writeFile(join(dir, 'ca.yaml'), `trustDomain: mesh.local\ndir: ${join(dir, 'ca')}\nlisten: 127.0.0.1:${taken}\n`);
  const ca = startMeshcar(['ca', 'serve', '--config', join(dir, 'ca.yaml')]);
  t.equal(await ca.exited(), 1, 'exit 1');
  t.match(ca.stderr.join('\n'), new RegExp(`^meshcar: the CA cannot listen on 127\\.0\\.0\\.1:${taken} \\(listen\\): listen EADDRINUSE.*\\(listen_failed\\)$`));
});
