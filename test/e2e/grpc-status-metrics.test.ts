// Whole mesh, gRPC statuses made visible: a @grpc/grpc-js client calls through a real sidecar
// pair (the frontend's outbound h2c listener, mTLS, two inbound sidecars with h2c apps) and
// meshcar_grpc_responses_total on both sides counts exactly what the client got: OK, NOT_FOUND
// trailers-only and after a message, the inbound's own DEADLINE_EXCEEDED (the app too slow),
// the outbound's own UNAVAILABLE on an answer cut when the app is killed mid-stream (`none` on
// the inbound, whose caller got a reset), the inbound's own UNAVAILABLE once the app is gone,
// and the outbound's own UNIMPLEMENTED for an upstream it does not know. meshcar_requests_total keeps its labels; a plain HTTP request makes no gRPC series;
// promtool accepts both pages; the access lines carry grpcStatus for gRPC requests only.
// codec-node-grpc-status-metrics.test.ts runs it again on http2.codec node.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { startMeshCa, startSidecar, waitFor, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';
import { request } from '../helpers/apps.js';
import { promtoolCheck } from '../helpers/promtool.js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const method = (path: string, responseStream: boolean) => ({ path, requestStream: false, responseStream, requestSerialize: raw.serialize, requestDeserialize: raw.deserialize, responseSerialize: raw.serialize, responseDeserialize: raw.deserialize });
const SERVICE: grpc.ServiceDefinition = {
  // unary: 'ok' answers, 'missing' is NOT_FOUND before any message (trailers-only), 'slow' never answers
  Get: method('/meshcar.test.Shop/Get', false),
  // server streaming: one message, then NOT_FOUND in the trailers ('missing'), or more messages until cancelled
  List: method('/meshcar.test.Shop/List', true),
};
const GET = '/meshcar.test.Shop/Get';
const LIST = '/meshcar.test.Shop/List';

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let ca: MeshCa;
let server: grpc.Server; // the shop's app
let doomed: grpc.Server; // the app killed mid-stream
let shop: RunningSidecar;
let gone: RunningSidecar;
let frontend: RunningSidecar;
const clients: Client[] = [];

function startApp(): Promise<{ server: grpc.Server; port: number }> {
  const app = new grpc.Server();
  app.addService(SERVICE, {
    Get: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      const what = call.request.toString();
      if (what === 'ok') done(null, Buffer.from('here'));
      else if (what === 'missing') done({ code: grpc.status.NOT_FOUND, details: 'no such order' });
      // 'slow': no answer; the inbound's 500 ms timeout answers for the app
    },
    List: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      call.write(Buffer.from('first'));
      if (call.request.toString() === 'missing') {
        call.emit('error', { code: grpc.status.NOT_FOUND, details: 'no more orders' });
        return;
      }
      const timer = setInterval(() => call.write(Buffer.from('tick')), 100);
      call.on('cancelled', () => clearInterval(timer));
    },
  });
  return new Promise((resolve, reject) => app.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server: app, port }))));
}

t.before(async () => {
  const [live, dying] = await Promise.all([startApp(), startApp()]);
  server = live.server;
  doomed = dying.server;
  ca = await startMeshCa(t.testdir());
  await Promise.all([
    startSidecar(ca, { service: 'shop', access: true, inbound: { app: `h2c://127.0.0.1:${live.port}`, timeout: '500ms' } }).then((s) => (shop = s)),
    startSidecar(ca, { service: 'gone', access: true, inbound: { app: `h2c://127.0.0.1:${dying.port}`, timeout: '5s' } }).then((s) => (gone = s)),
  ]);
  frontend = await startSidecar(ca, {
    service: 'frontend',
    access: true,
    upstreams: [
      { name: 'shop', endpoints: [`127.0.0.1:${shop.inboundPort}`], identity: 'spiffe://mesh.local/svc/shop', timeout: '5s' },
      // no retries: each call is one request on each side, so the counts are exact
      { name: 'gone', endpoints: [`127.0.0.1:${gone.inboundPort}`], identity: 'spiffe://mesh.local/svc/gone', timeout: '5s\n      retries: {attempts: 0}' },
    ],
  });
});

t.teardown(async () => {
  for (const c of clients) c.close();
  await Promise.all([frontend?.stop('SIGKILL'), shop?.stop('SIGKILL'), gone?.stop('SIGKILL')]);
  await ca?.stop();
  server?.forceShutdown();
  doomed?.forceShutdown();
});

function clientFor(authority: string): Client {
  const Ctor = grpc.makeGenericClientConstructor(SERVICE, 'Shop');
  const client = new Ctor(`127.0.0.1:${frontend.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as Client;
  clients.push(client);
  return client;
}

const idMeta = (id: string) => {
  const m = new grpc.Metadata();
  m.set('x-request-id', id);
  return m;
};

/** A unary Get: resolves with the status code the client read. */
function get(client: Client, what: string, id: string): Promise<number> {
  return new Promise((resolve) => {
    (client.Get as (req: Buffer, m: grpc.Metadata, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void)(Buffer.from(what), idMeta(id), { deadline: Date.now() + 10_000 }, (err) => resolve(err ? err.code : grpc.status.OK));
  });
}

/** A List stream: resolves with its messages and end status; `onFirst` runs at the first message. */
function list(client: Client, what: string, id: string, onFirst?: () => void): Promise<{ messages: number; code: number }> {
  return new Promise((resolve) => {
    let messages = 0;
    const call = (client.List as (req: Buffer, m: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<Buffer>)(Buffer.from(what), idMeta(id), { deadline: Date.now() + 10_000 });
    call.on('data', () => {
      if (messages++ === 0) onFirst?.();
    });
    call.on('error', (err: grpc.ServiceError) => resolve({ messages, code: err.code }));
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) resolve({ messages, code: s.code });
    });
  });
}

/** The meshcar_grpc_responses_total samples of a page, as `direction peer route code` → value. */
function grpcSeries(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^meshcar_grpc_responses_total\{direction="([^"]*)",peer="([^"]*)",route="([^"]*)",grpc_code="([^"]*)"\} (\S+)$/.exec(line);
    if (m) out[`${m[1]} ${m[2]} ${m[3]} ${m[4]}`] = Number(m[5]);
  }
  return out;
}

/** A sidecar's gRPC series, once they count `want`'s total (a request is counted as its stream closes). */
async function seriesOf(sidecar: RunningSidecar, want: Record<string, number>, who: string): Promise<{ text: string; series: Record<string, number> }> {
  const total = (s: Record<string, number>) => Object.values(s).reduce((a, b) => a + b, 0);
  let text = '';
  await waitFor(
    async () => {
      text = (await sidecar.admin('/metrics')).body;
      return total(grpcSeries(text)) >= total(want);
    },
    5_000,
    `${who}: every gRPC request counted`,
  ).catch(() => {}); // the comparison below says what is missing
  return { text, series: grpcSeries(text) };
}

t.test('statuses counted per grpc_code on both sides, the sidecars\' own included', async (t) => {
  const shopClient = clientFor('shop');
  t.equal(await get(shopClient, 'ok', 'g-ok'), grpc.status.OK, 'OK');
  t.equal(await get(shopClient, 'missing', 'g-missing'), grpc.status.NOT_FOUND, 'NOT_FOUND, trailers-only');
  t.same(await list(shopClient, 'missing', 'g-list-missing'), { messages: 1, code: grpc.status.NOT_FOUND }, 'NOT_FOUND after a message');
  t.equal(await get(shopClient, 'slow', 'g-slow'), grpc.status.DEADLINE_EXCEEDED, "the inbound's own DEADLINE_EXCEEDED");
  const goneClient = clientFor('gone');
  const cut = await list(goneClient, 'forever', 'g-cut', () => doomed.forceShutdown());
  t.equal(cut.code, grpc.status.UNAVAILABLE, "the app killed mid-stream: the outbound's own UNAVAILABLE");
  t.equal(await get(goneClient, 'ok', 'g-gone'), grpc.status.UNAVAILABLE, "the app gone: the inbound's own UNAVAILABLE");
  t.equal(await get(clientFor('nowhere'), 'ok', 'g-no-route'), grpc.status.UNIMPLEMENTED, "no such upstream: the outbound's own UNIMPLEMENTED (no_route)");
  // not gRPC: counted in meshcar_requests_total only
  const plain = await request(frontend.outboundPort, { path: '/plain', headers: { host: 'shop', 'x-request-id': 'g-plain' } });
  t.ok(plain.status > 0, `a plain HTTP request answered ${plain.status}`);

  const shopWant = {
    [`inbound frontend ${GET} OK`]: 1,
    [`inbound frontend ${GET} NOT_FOUND`]: 1,
    [`inbound frontend ${GET} DEADLINE_EXCEEDED`]: 1,
    [`inbound frontend ${LIST} NOT_FOUND`]: 1,
  };
  const goneWant = {
    [`inbound frontend ${LIST} none`]: 1,
    [`inbound frontend ${GET} UNAVAILABLE`]: 1,
  };
  const frontendWant = {
    [`outbound shop ${GET} OK`]: 1,
    [`outbound shop ${GET} NOT_FOUND`]: 1,
    [`outbound shop ${GET} DEADLINE_EXCEEDED`]: 1,
    [`outbound shop ${LIST} NOT_FOUND`]: 1,
    [`outbound gone ${LIST} UNAVAILABLE`]: 1,
    [`outbound gone ${GET} UNAVAILABLE`]: 1,
    // the peer label meshcar_requests_total gives a request that matched no upstream
    [`outbound unknown ${GET} UNIMPLEMENTED`]: 1,
  };
  const pages: string[] = [];
  for (const [who, sidecar, want] of [['shop (inbound)', shop, shopWant], ['gone (inbound)', gone, goneWant], ['frontend (outbound)', frontend, frontendWant]] as const) {
    const { text, series } = await seriesOf(sidecar, want, who);
    t.same(series, want, `${who}: meshcar_grpc_responses_total, exactly`);
    pages.push(text);
  }
  const [shopPage, gonePage, frontendPage] = pages as [string, string, string];

  // the contract's family as before: a NOT_FOUND is still HTTP 200 there, with no new label
  t.match(frontendPage, /^meshcar_requests_total\{direction="outbound",peer="shop",method="POST",route="\/meshcar\.test\.Shop\/Get",code="200"\} 2$/m, 'OK and NOT_FOUND: code="200"');
  t.match(frontendPage, /^meshcar_requests_total\{direction="outbound",peer="shop",method="GET",route="\/plain",code="\d+"\} 1$/m, 'the plain request counted there');
  t.notMatch(frontendPage, /meshcar_requests_total\{[^}]*grpc/, 'meshcar_requests_total has no gRPC label');
  for (const [who, page] of [['shop', shopPage], ['gone', gonePage], ['frontend', frontendPage]] as const) {
    const check = await promtoolCheck(page);
    t.equal(check.code, 0, `promtool check metrics accepts ${who}'s page: ${check.output}`);
  }
});

t.test('the access lines carry grpcStatus for gRPC requests only', async (t) => {
  const line = (sidecar: RunningSidecar, id: string) => sidecar.process.waitFor((l) => l.component === 'access' && l.requestId === id, 5_000);
  t.match(await line(shop, 'g-ok'), { direction: 'inbound', status: 200, grpcStatus: 0 });
  t.match(await line(shop, 'g-missing'), { direction: 'inbound', status: 200, grpcStatus: 5 });
  t.match(await line(frontend, 'g-list-missing'), { direction: 'outbound', grpcStatus: 5 });
  t.match(await line(frontend, 'g-slow'), { direction: 'outbound', grpcStatus: 4, error: 'upstream_timeout' });
  t.match(await line(frontend, 'g-cut'), { direction: 'outbound', grpcStatus: 14 });
  const cutInbound = await line(gone, 'g-cut');
  t.equal(cutInbound.grpcStatus, null, 'the inbound cut the answer: no status (null)');
  const plain = await line(frontend, 'g-plain');
  t.notOk('grpcStatus' in plain, 'a plain request has no grpcStatus');
});
