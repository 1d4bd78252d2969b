// Mixed long-lived traffic through sidecars with `workers: 2` on both sides while a worker on
// each side is killed with SIGKILL, for real: frontend calls orders (HTTP/1.1 echo app) and
// grpcapp (grpc-js over h2c), each side having just reloaded a live key. A flow carried by a
// killed worker is cut the way the README's Workers section says: a GET without its answer is
// retried on a new session (held GETs and plain requests all get 200), a gRPC call ends
// UNAVAILABLE, a started download is cut, an upload gets 502 upstream_reset, a tunnel reads a
// FIN or a reset and is reset at its next write; frontend's counters say exactly that. New
// flows after each kill all succeed, the replacements run the primary's generation and SVID,
// the open-stream gauge falls to 0, totals never go down, and nothing but the restarts warns.

import t from 'tap';
import http from 'node:http';
import { metricValue, waitFor, type RunningSidecar } from '../helpers/mesh.js';
import { workersFixture, workersOf } from '../helpers/workers.js';
import { grpcChat, grpcTicks, plainLoop, slowDownload, slowUpload, tunnelEcho, type FlowEnd, type GrpcClient } from '../helpers/mixed-flows.js';
import { reloadWith, startMixedMesh, total } from '../helpers/mixed-mesh.js';

const fx = workersFixture(t);
const MB = 1024 * 1024;

/** A round of every flow, about `seconds` long. */
function round(client: GrpcClient, port: number, seconds: number): Promise<FlowEnd[]> {
  const n = seconds * 10;
  return Promise.all([grpcTicks(client, n, 100), grpcChat(client, n, 100), tunnelEcho(port, n, 100), slowDownload(port, seconds * 3 * MB, 160 * 1024), slowUpload(port, seconds * 3 * MB, 160 * 1024)]);
}

/** A GET the app holds until released, on a new connection to the outbound: its status, or what cut it. */
function heldGet(port: number, id: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/slow?hold', headers: { host: 'orders', 'x-request-id': id }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.statusCode)));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
  });
}

async function killOneWorker(sidecar: RunningSidecar): Promise<void> {
  const [one] = (await workersOf(sidecar)).workers;
  process.kill(one?.pid as number, 'SIGKILL');
  await waitFor(async () => (await sidecar.admin('/ready')).status === 200 && (await workersOf(sidecar)).workers.every((w) => w.listening && w.pid !== one?.pid), 10_000, 'the replacement listening', sidecar.process);
}

t.test('workers: 2 both sides: a worker killed on each side mid-traffic', { timeout: 60_000 }, async (t) => {
  const { frontend, orders, grpcapp, client, appSocketErrors } = await startMixedMesh(t, fx, 2);

  const plain = plainLoop(frontend.outboundPort);
  // round 1: a reload of each side, then a worker of orders and one of grpcapp killed mid-flow
  const first = round(client, frontend.outboundPort, 6);
  // GETs held by the app, on both of frontend's workers (a connection each, taken in turn)
  const heldIds = ['held-1', 'held-2', 'held-3', 'held-4'];
  const held = heldIds.map((id) => heldGet(frontend.outboundPort, id));
  await waitFor(async () => heldIds.every((id) => fx.app.seen.some((h) => h['x-request-id'] === id)), 5_000, 'the app holding the four GETs');
  await new Promise((r) => setTimeout(r, 1_000));
  const reloads = await Promise.all([
    reloadWith(frontend, (text) => text.replace(/timeout: 30s/g, 'timeout: 31s')),
    reloadWith(orders, (text) => text.replace('timeout: 30s', 'timeout: 31s')),
    reloadWith(grpcapp, (text) => text.replace('timeout: 30s', 'timeout: 31s')),
  ]);
  t.same(reloads.map((r) => r.status), [200, 200, 200], 'three reloads: 200');
  await Promise.all([killOneWorker(orders), killOneWorker(grpcapp)]);
  for (const id of heldIds) fx.app.release(id);
  t.same(await Promise.all(held), ['200', '200', '200', '200'], 'the held GETs: 200 (one cut on a killed worker is retried on a new session)');
  const firstEnds = await first;
  const plainFirst = await plain.stop();
  t.comment(`round 1 (server-side kills): ${JSON.stringify(firstEnds)}`);
  const fm1 = (await frontend.admin('/metrics')).body;
  // frontend lost no worker yet: its counts are exact
  const plainSent = [...plainFirst.values()].reduce((a, b) => a + b, 0);
  t.same([...plainFirst.keys()], ['200'], 'plain requests: all 200 (a GET cut on a killed worker is retried)');
  t.equal(total(fm1, 'meshcar_requests_total', 'direction="outbound"', 'peer="orders"'), plainSent + 3 + 4, `frontend: ${plainSent} + 3 + 4 requests to orders`);
  t.equal(total(fm1, 'meshcar_requests_total', 'direction="outbound"', 'peer="grpcapp"'), 2, 'frontend: 2 gRPC calls');
  const cut = firstEnds.filter((e) => !e.ok);
  // an upload's 502 reaches its client: frontend answers and closes while 160 KiB chunks are
  // still coming, and lingers reading them (src/http/lingering-close.ts), so the client's next
  // write never meets a reset before it has read the answer
  for (const end of cut) {
    const expected = { 'grpc-ticks': /UNAVAILABLE: .*reset the stream/, 'grpc-chat': /UNAVAILABLE: .*reset the stream/, download: /^200 \d+\/\d+: aborted/, upload: /^502 .*upstream_reset/, tunnel: /closed after \d+\/\d+ bytes: (end,)?error:(EPIPE|ECONNRESET)/ }[end.flow];
    t.match(end.detail, expected ?? /never/, `cut on the killed worker: ${end.flow}: ${end.detail}`);
  }
  const grpcCut = cut.filter((e) => e.flow.startsWith('grpc')).length;
  t.equal(total(fm1, 'meshcar_grpc_responses_total', 'grpc_code="UNAVAILABLE"'), grpcCut, `grpc_responses UNAVAILABLE: ${grpcCut}`);
  t.equal(total(fm1, 'meshcar_request_errors_total', 'reason="upstream_reset"'), cut.filter((e) => e.flow !== 'tunnel').length, 'request_errors upstream_reset: one per cut exchange');
  // round 2: all new, then a frontend worker killed after it
  const second = await round(client, frontend.outboundPort, 3);
  for (const end of second) t.ok(end.ok, `after the server-side kills: ${end.flow}: ${end.detail}`);
  await killOneWorker(frontend);
  const third = await round(client, frontend.outboundPort, 3);
  for (const end of third) t.ok(end.ok, `after the client-side kill: ${end.flow}: ${end.detail}`);

  for (const [name, s] of [['frontend', frontend], ['orders', orders], ['grpcapp', grpcapp]] as const) {
    // the two reads are not one moment: a renewal landing between them (this mesh's SVIDs live
    // 30 s and renew 2-3.6 s after issue) read as workers behind the primary (a clean-clone run:
    // both workers on the SVID /identity had replaced a moment later); so both are read until
    // they agree, 10 s at most, and then asserted
    let view = await workersOf(s);
    let current = '';
    const agree = async () => {
      view = await workersOf(s);
      current = (JSON.parse((await s.admin('/identity')).body) as { serial: string }).serial.toLowerCase();
      return view.workers.every((w) => w.serial === current && w.generation === view.generation);
    };
    await waitFor(agree, 10_000, `${name}: the workers and /identity agree`, s.process).catch(() => undefined);
    t.same(view.workers.map((w) => w.generation), [view.generation, view.generation], `${name}: every worker on generation ${view.generation}`);
    t.same(view.workers.map((w) => w.serial), [current, current], `${name}: every worker serves ${current}`);
  }
  await waitFor(async () => total((await frontend.admin('/metrics')).body, 'meshcar_upstream_active_streams') === 0, 5_000, 'frontend open streams back to 0', frontend.process);
  const fm = (await frontend.admin('/metrics')).body;
  // the killed frontend worker's counts since the last scrape are lost (README, Workers); the
  // rest are kept: totals never go down
  t.ok(total(fm, 'meshcar_requests_total', 'direction="outbound"') >= total(fm1, 'meshcar_requests_total', 'direction="outbound"'), 'frontend: request totals did not go down');
  for (const [name, s] of [['frontend', frontend], ['orders', orders], ['grpcapp', grpcapp]] as const) {
    const m = (await s.admin('/metrics')).body;
    t.same([metricValue(m, 'meshcar_workers'), metricValue(m, 'meshcar_workers_restarts_total')], [2, 1], `${name}: 2 workers, 1 restart`);
  }
  // a new connection to a side whose worker was just killed can meet that worker's end (the
  // kernel resets what the killed worker held, the handshake with it too): the caller's
  // "upstream endpoint failed" for such a reset or close is the kill's as well (seen once in a
  // fresh-clone run on a loaded machine); any other warning is the sidecar's
  const killed = (l: { msg?: unknown; err?: unknown }) => l.msg === 'upstream endpoint failed' && /ECONNRESET|EPIPE|socket hang up|closed|disconnected/i.test(String(l.err));
  // this mesh's SVIDs live 30 s: a session older than that (the test runs ~30 s, longer on a
  // loaded machine) is closed at its peer certificate's end, as the README says, and warned
  // (seen once in a clean-clone run); that is no fault of the kills
  const expired = (l: { msg?: unknown }) => typeof l.msg === 'string' && l.msg.startsWith('upstream session closed') && /certificate path expired/.test(l.msg);
  const lines = [frontend, orders, grpcapp].flatMap((s) => s.process.lines.filter((l) => Number(l.level) >= 40 && !killed(l) && !expired(l)));
  t.same([...new Set(lines.map((l) => l.msg))], ['worker exited unexpectedly; restarting it'], `no warning or error but the three restarts (${JSON.stringify(lines.filter((l) => l.msg !== 'worker exited unexpectedly; restarting it').map((l) => l.err))})`);
  // a SIGKILLed worker's sockets are closed by the kernel, with a reset when the app's echo was
  // still unread there: the app's end of a tunnel through it may read ECONNRESET (seen once in a
  // fresh-clone CI run on a slow machine); anything else is an error the sidecar caused
  t.same(appSocketErrors.filter((message) => message !== 'read ECONNRESET'), [], 'app tunnel ends saw no error but a killed worker\'s reset');
});
