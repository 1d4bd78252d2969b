// The inbound's resource caps, set in a real sidecar's YAML (inbound.limits), take effect:
// maxConnectionsPerCaller closes a caller's second connection, maxPipelined closes a connection
// with more requests in flight, maxAppConnections holds the app to that many connections,
// maxHandshakes closes the oldest of the half-done handshakes from several addresses. A
// real CA, a real `meshcar run`, mTLS clients with the CA's certificates, an app that counts
// its connections. Each figure is far below its default, so the defaults could not pass.

import t from 'tap';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { metricValue, startMeshCa, startSidecar, waitFor, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { rawTlsUntilClosed } from '../helpers/raw-http.js';

let ca: MeshCa;
let orders: RunningSidecar;
let app: http.Server;
let appConnections = 0;
let client: tls.ConnectionOptions;

t.before(async () => {
  ca = await startMeshCa(t.testdir());
  // a slow app: each answer 150 ms after its request, so concurrent requests would need
  // connections of their own unless the pool holds them to one
  app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.end(`ok ${req.url}`), 150));
  });
  app.on('connection', () => appConnections++);
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  orders = await startSidecar(ca, {
    service: 'orders',
    inbound: { app: `http://127.0.0.1:${(app.address() as AddressInfo).port}`, limits: '{maxConnectionsPerCaller: 1, maxPipelined: 2, maxAppConnections: 1, maxHandshakes: 3}' },
  });
  const svid = await ca.issue('frontend');
  client = { cert: svid.cert, key: svid.key, ca: svid.bundle, checkServerIdentity: () => undefined };
});
t.teardown(async () => {
  await orders?.stop();
  await ca?.stop();
  app?.closeAllConnections();
  await new Promise((resolve) => app?.close(resolve));
});

const refused = async (reason: string) => metricValue((await orders.admin('/metrics')).body, `meshcar_inbound_connections_refused_total{reason="${reason}"}`) ?? 0;

t.test('maxAppConnections: 1: three concurrent requests reach the app on one connection', async (t) => {
  const session = http2.connect(`https://127.0.0.1:${orders.inboundPort}`, client);
  t.teardown(() => session.close());
  const bodies = await Promise.all(
    [1, 2, 3].map(
      (i) =>
        new Promise<string>((resolve, reject) => {
          const stream = session.request({ ':path': `/c/${i}` });
          let body = '';
          stream.setEncoding('utf8');
          stream.on('data', (c: string) => (body += c));
          stream.on('end', () => resolve(body));
          stream.on('error', reject);
        }),
    ),
  );
  t.same(bodies, ['ok /c/1', 'ok /c/2', 'ok /c/3']);
  t.equal(appConnections, 1, 'the app saw one connection');
});

t.test('maxConnectionsPerCaller: 1: a second connection of the same identity is closed', async (t) => {
  // the last test's connection may still count against the cap of one for a moment (its close
  // reaches the inbound's count a few turns after the socket's): a first connection refused for
  // that is tried again
  let first: http2.ClientHttp2Session | undefined;
  t.teardown(() => first?.destroy());
  await waitFor(
    async () => {
      first?.destroy();
      const session = http2.connect(`https://127.0.0.1:${orders.inboundPort}`, client);
      first = session;
      session.on('error', () => {});
      return new Promise<boolean>((resolve) => {
        session.once('close', () => resolve(false));
        session.request({ ':path': '/first' }).on('response', () => resolve(true)).on('error', () => resolve(false)).on('close', () => resolve(false)).resume();
      });
    },
    10_000,
    'a first connection of the identity served',
  );
  const before = await refused('caller_limit');
  const second = await rawTlsUntilClosed(orders.inboundPort, client, 'GET /second HTTP/1.1\r\nHost: orders\r\n\r\n');
  t.equal(second, '', 'closed before any answer');
  await waitFor(async () => (await refused('caller_limit')) === before + 1, 5000, 'the refusal counted as caller_limit');
});

t.test('maxPipelined: 2: a connection with four requests in flight is closed', async (t) => {
  const before = await refused('pipelined');
  const pipelined = [1, 2, 3, 4].map((i) => `GET /p/${i} HTTP/1.1\r\nHost: orders\r\n\r\n`).join('');
  // the last test's connection may still count against the cap of one for a moment: a
  // connection refused for that is tried again
  let text = '';
  await waitFor(
    async () => {
      text = await rawTlsUntilClosed(orders.inboundPort, client, pipelined);
      return (await refused('pipelined')) === before + 1;
    },
    10_000,
    'a connection closed for its pipelined requests, counted as pipelined',
  );
  t.notMatch(text, /ok \/p\/4/, 'the fourth request was not answered');
});

t.test('maxHandshakes: 3: a fourth half-done handshake, from another address, closes the oldest', async (t) => {
  const before = await refused('handshake_total_limit');
  const stalled: net.Socket[] = [];
  t.teardown(() => stalled.forEach((s) => s.destroy()));
  // each address is far within its own cap (256): only the listener's total can close them
  for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
    const socket = net.connect({ port: orders.inboundPort, host: '127.0.0.1', localAddress: from });
    socket.on('error', () => {});
    stalled.push(socket);
    await once(socket, 'connect');
  }
  await waitFor(async () => stalled[0]!.destroyed, 5000, 'the oldest handshake closed');
  t.same(stalled.map((s) => s.destroyed), [true, false, false, false], 'the three newest are held (until the handshake timeout)');
  await waitFor(async () => (await refused('handshake_total_limit')) === before + 1, 5000, 'counted as handshake_total_limit');
});
