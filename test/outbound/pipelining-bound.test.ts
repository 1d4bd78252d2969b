// An app that pipelines HTTP/1.1 requests to the outbound and never reads the answers. Node
// hands over every request of a pipelined write at once: an app writing 20,000 had them all
// forwarded upstream or refused, their answers held until it read the earlier ones (+57 MB RSS
// in a sidecar process, 6,144 requests reached the far app, from one connection). Beyond 32
// answers in progress on one connection it is now closed; an app pipelining a few requests gets
// every answer, in order. Raw TCP (only hand-made clients pipeline), a real mTLS upstream.

import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { startOutboundToUpstream } from '../helpers/outbound-fixture.js';
import { startMeshCa, startSidecar } from '../helpers/mesh.js';

const requests = (n: number) => Array.from({ length: n }, (_, i) => `GET /status/200?r=${i} HTTP/1.1\r\nHost: payments\r\n\r\n`).join('');

async function appSocket(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

t.test('an app pipelining 2,000 requests without reading is cut off after the bound', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const socket = await appSocket(fx.port);
  t.teardown(() => socket.destroy());
  socket.pause(); // never reads
  const closed = new Promise<'closed'>((resolve) => socket.once('close', () => resolve('closed')));
  socket.write(requests(2000));
  const outcome = await Promise.race([closed, new Promise((r) => setTimeout(() => r('open'), 5000).unref())]);
  t.equal(outcome, 'closed', 'the connection is closed');
  t.ok(upstream.requests <= 33, `the upstream was asked at most the bound's worth (${upstream.requests} of 2000)`);
});

// Node's parser read the whole of each read (64 KiB: ~1,700 bare GETs) after the cut, a request
// and a response made for each: 200 such connections took the outbound to 550 MB and stalled it
// for seconds (3 s of CPU for 40); now the cut ends that read's parsing. A real sidecar process:
// its own CPU counter (/metrics) says what the bursts cost it.
t.test('after the cut, the rest of the pipelined write costs the sidecar next to nothing', async (t) => {
  const ca = await startMeshCa(t.testdir());
  t.teardown(() => ca.stop());
  const orders = await startSidecar(ca, { service: 'orders', inbound: { app: 'http://127.0.0.1:9' } });
  t.teardown(() => orders.stop());
  const frontend = await startSidecar(ca, { service: 'frontend', upstreams: [{ name: 'orders', endpoints: [`127.0.0.1:${orders.inboundPort}`], identity: 'spiffe://mesh.local/svc/orders' }] });
  t.teardown(() => frontend.stop('SIGKILL'));
  const cpuSeconds = async () => Number((await frontend.admin('/metrics')).body.match(/^process_cpu_seconds_total (\S+)$/m)?.[1]);
  const burst = Array.from({ length: 2000 }, () => 'GET /s HTTP/1.1\r\nHost: orders\r\n\r\n').join('');
  const before = await cpuSeconds();
  const sockets = await Promise.all(Array.from({ length: 40 }, () => appSocket(frontend.outboundPort)));
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const closed = sockets.map((s) => new Promise((resolve) => s.once('close', resolve)));
  for (const s of sockets) {
    s.pause(); // never reads
    s.write(burst);
  }
  await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 15_000).unref())]);
  t.ok(sockets.every((s) => s.destroyed), 'every connection is closed');
  const spent = (await cpuSeconds()) - before;
  t.ok(spent < 1.2, `40 bursts of 2,000 GETs cost the outbound ${spent.toFixed(2)} s of CPU (2-3 s when each burst's rest was parsed)`);
  t.equal((await frontend.admin('/ready')).status, 200, 'and it serves on');
});

t.test('an app pipelining a few requests gets every answer, in order', async (t) => {
  const { upstream, fx } = await startOutboundToUpstream(t);
  const socket = await appSocket(fx.port);
  t.teardown(() => socket.destroy());
  let text = '';
  socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
  socket.write(requests(20).replace(/GET \/status\/200\?r=(\d+)/g, 'GET /echo?r=$1'));
  const answered = () => text.match(/\/echo\?r=\d+/g) ?? [];
  for (let i = 0; i < 500 && answered().length < 20; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(answered(), Array.from({ length: 20 }, (_, i) => `/echo?r=${i}`), '20 answers in order');
  t.equal(upstream.requests, 20, 'all 20 went upstream');
});
