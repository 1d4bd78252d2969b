// Mixed long-lived traffic through sidecars with `workers: 2` on both sides, across rotations and
// reloads, for real: frontend (client side) calls orders (an HTTP/1.1 echo app) and grpcapp (a
// grpc-js app over h2c). While a gRPC server stream, a gRPC bidi call, a WebSocket-style tunnel,
// a paced download and a paced upload (24 MB each) and plain requests run for about 8 s, every
// side renews its SVID (30 s lifetimes renewed 2-3.6 s after issue; a lifetime shorter than a
// flow would cut it at the caller's expiry, as the README says) and each side
// reloads a live key: none of them is cut, every new request succeeds, and once traffic stops
// the open-stream gauge is 0, the sessions gauge is the connections really held, the request
// counters equal what the clients sent, and every worker runs the primary's generation and SVID.
// mixed-rotation-reload-one.test.ts runs the same with one process per sidecar.

import t from 'tap';
import { waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';
import { connectionsTo } from '../helpers/connections.js';
import { grpcChat, grpcTicks, plainLoop, slowDownload, slowUpload, tunnelEcho } from '../helpers/mixed-flows.js';
import { reloadWith, startMixedMesh, total } from '../helpers/mixed-mesh.js';

const fx = workersFixture(t);
/** 2 here; mixed-rotation-reload-one.test.ts runs the same with one process per sidecar. */
const WORKERS = Number(process.env.MESHCAR_TEST_MIXED_WORKERS ?? '2');
const MB = 1024 * 1024;

t.test(`workers: ${WORKERS} both sides: rotations and reloads cut no flow; gauges and counts come back to the truth`, { timeout: 60_000 }, async (t) => {
  const { frontend, orders, grpcapp, client, appSocketErrors } = await startMixedMesh(t, fx, WORKERS);

  const serials = async (s: RunningSidecar) => (JSON.parse((await s.admin('/identity')).body) as { serial: string }).serial.toLowerCase();
  const firstSerials = await Promise.all([frontend, orders, grpcapp].map(serials));

  // about 8 s of each flow
  const plain = plainLoop(frontend.outboundPort);
  const flows = Promise.all([
    grpcTicks(client, 80, 100),
    grpcChat(client, 80, 100),
    tunnelEcho(frontend.outboundPort, 80, 100),
    slowDownload(frontend.outboundPort, 24 * MB, 160 * 1024),
    slowUpload(frontend.outboundPort, 24 * MB, 160 * 1024),
  ]);
  // a reload of each side that changes a live key while the flows run
  await new Promise((r) => setTimeout(r, 2_000));
  const reloads = await Promise.all([
    reloadWith(frontend, (text) => text.replace(/timeout: 30s/g, 'timeout: 31s')),
    reloadWith(orders, (text) => text.replace('timeout: 30s', 'timeout: 31s')),
    reloadWith(grpcapp, (text) => text.replace('access: false', 'access: true')),
  ]);
  t.same(reloads.map((r) => r.status), [200, 200, 200], `three reloads: 200 (${reloads.map((r) => r.body).join(' ')})`);
  const ended = await flows;
  const statuses = await plain.stop();
  for (const end of ended) t.ok(end.ok, `${end.flow}: ${end.detail}`);
  t.same([...statuses.keys()], ['200'], `plain requests all 200: ${JSON.stringify([...statuses])}`);
  const lastSerials = await Promise.all([frontend, orders, grpcapp].map(serials));
  t.ok(lastSerials.every((s, i) => s !== firstSerials[i]), 'every side renewed its SVID meanwhile');

  // the truth, once traffic stops
  const plainSent = [...statuses.values()].reduce((a, b) => a + b, 0);
  await waitFor(
    async () => {
      const m = (await frontend.admin('/metrics')).body;
      return total(m, 'meshcar_upstream_active_streams') === 0;
    },
    5_000,
    'frontend open streams back to 0',
    frontend.process,
  );
  const fm = (await frontend.admin('/metrics')).body;
  const om = (await orders.admin('/metrics')).body;
  const gm = (await grpcapp.admin('/metrics')).body;
  t.equal(total(fm, 'meshcar_requests_total', 'direction="outbound"', 'peer="orders"'), plainSent + 3, `frontend: outbound requests to orders ${plainSent} + 3`);
  t.equal(total(fm, 'meshcar_requests_total', 'direction="outbound"', 'peer="grpcapp"'), 2, 'frontend: 2 gRPC calls');
  t.equal(total(om, 'meshcar_requests_total', 'direction="inbound"'), plainSent + 3, 'orders: the same inbound');
  t.equal(total(gm, 'meshcar_requests_total', 'direction="inbound"'), 2, 'grpcapp: 2 inbound');
  // the sessions gauge is the connections frontend's processes really hold to each upstream
  const pids = WORKERS > 1 ? (await workersOf(frontend)).workers.map((w) => w.pid) : [frontend.process.child.pid as number];
  let held: number[] = [];
  let gauged: number[] = [];
  const agree = async () => {
    const m = (await frontend.admin('/metrics')).body;
    gauged = [total(m, 'meshcar_upstream_sessions', 'upstream="orders"'), total(m, 'meshcar_upstream_sessions', 'upstream="grpcapp"')];
    held = await Promise.all([orders.inboundPort, grpcapp.inboundPort].map(async (port) => (await Promise.all(pids.map((pid) => connectionsTo(pid, port)))).flat().length));
    return held[0] === gauged[0] && held[1] === gauged[1];
  };
  await waitFor(agree, 5_000, 'the sessions gauge agreeing with the connections held').catch(() => undefined);
  t.same(gauged, held, `meshcar_upstream_sessions (orders, grpcapp) ${gauged} = the connections frontend holds ${held}`);
  for (const s of WORKERS > 1 ? [frontend, orders, grpcapp] : []) {
    // read together, until no renewal (every 2-3.6 s here) falls between the two reads
    let view = await workersOf(s);
    let current = await serials(s);
    await waitFor(async () => {
      [view, current] = [await workersOf(s), await serials(s)];
      return view.workers.every((w) => w.serial === current);
    }, 5_000, 'the workers serving the SVID /identity shows').catch(() => undefined);
    t.ok(view.workers.every((w) => w.generation === view.generation), `generations agree: ${view.generation} ${JSON.stringify(view.workers.map((w) => w.generation))}`);
    t.ok(view.workers.every((w) => w.serial === current), `serials agree with /identity ${current}: ${JSON.stringify(view.workers.map((w) => w.serial))}`);
  }
  const bad = [frontend, orders, grpcapp].flatMap((s) => s.process.lines.filter((l) => Number(l.level) >= 50 || /uncaught|unhandled/i.test(String(l.msg))));
  t.same(bad, [], 'no error lines');
  t.same(appSocketErrors, [], 'the app\'s tunnel ends saw no error');
});
