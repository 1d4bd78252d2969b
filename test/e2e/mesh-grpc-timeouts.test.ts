// Whole mesh, gRPC timeouts (review-grpc findings 2, 5, 7): a @grpc/grpc-js client and server
// through a real sidecar pair. The response-head timeouts of both sides run from the end of the
// request (a client-streaming upload slower than them goes through; a late answer still gets
// DEADLINE_EXCEEDED the timeout after the end of the body); `timeout: 0` lets a stream answer
// whenever it likes, the idle timeout still guarding it; the app is told the caller's own
// grpc-timeout, as the request's body is still coming when its head is passed on (a sidecar's
// limit in it would be counted from the head); and quiet answered streams cut by the idle
// timeout eject no endpoint. codec-node-mesh-grpc-timeouts.test.ts runs it again on Node's codec.

import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { startMeshCa, startSidecar, type MeshCa, type RunningSidecar } from '../helpers/mesh.js';

const raw = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: raw.serialize,
  requestDeserialize: raw.deserialize,
  responseSerialize: raw.serialize,
  responseDeserialize: raw.deserialize,
});
const SERVICE: grpc.ServiceDefinition = {
  // client streaming: answers the byte count `late` ms after the end of the upload (first byte of the first message)
  Upload: method('/meshcar.test.Files/Upload', true, false),
  // server streaming: the request is {first, then}: a message after `first` ms, then quiet for `then` ms (or forever: -1)
  Watch: method('/meshcar.test.Files/Watch', false, true),
  // unary: answers the deadline it was given, in ms from now
  Deadline: method('/meshcar.test.Files/Deadline', false, false),
};

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let ca: MeshCa;
let server: grpc.Server;
let timed: RunningSidecar; // inbound timeout 600ms
let open: RunningSidecar; // inbound timeout 0
let frontend: RunningSidecar;
const clients: Client[] = [];

t.before(async () => {
  server = new grpc.Server();
  server.addService(SERVICE, {
    Upload: (call: grpc.ServerReadableStream<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      let bytes = 0;
      let late = 0;
      call.on('data', (b: Buffer) => {
        if (bytes === 0) late = b[0] as number;
        bytes += b.length;
      });
      const timer = { id: undefined as NodeJS.Timeout | undefined };
      call.on('end', () => (timer.id = setTimeout(() => done(null, Buffer.from(String(bytes))), late * 100)));
      call.on('cancelled', () => clearTimeout(timer.id));
    },
    Watch: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const { first, then } = JSON.parse(call.request.toString()) as { first: number; then: number };
      const timers: NodeJS.Timeout[] = [];
      timers.push(
        setTimeout(() => {
          call.write(Buffer.from('first'));
          if (then >= 0) timers.push(setTimeout(() => call.end(), then));
        }, first),
      );
      call.on('cancelled', () => timers.forEach(clearTimeout));
    },
    Deadline: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      // grpc-js: the deadline as a Date or epoch ms (Infinity: none), from the grpc-timeout it got
      const deadline = call.getDeadline();
      done(null, Buffer.from(String((deadline instanceof Date ? deadline.getTime() : Number(deadline)) - Date.now())));
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))));
  ca = await startMeshCa(t.testdir());
  // two sidecars of the same service: one with a short head timeout, one with none
  // (each noted as soon as it runs: one that starts while the other fails is still stopped)
  await Promise.all([
    startSidecar(ca, { service: 'files', inbound: { app: `h2c://127.0.0.1:${port}`, timeout: '600ms' } }).then((s) => (timed = s)),
    startSidecar(ca, { service: 'files', inbound: { app: `h2c://127.0.0.1:${port}`, timeout: '0' } }).then((s) => (open = s)),
  ]);
  const identity = 'spiffe://mesh.local/svc/files';
  frontend = await startSidecar(ca, {
    service: 'frontend',
    upstreams: [
      // both timers short: the outbound's and the inbound's
      { name: 'files', endpoints: [`127.0.0.1:${timed.inboundPort}`], identity, timeout: '600ms' },
      // the outbound's long: the inbound's 600 ms decides
      { name: 'files-inbound-timed', endpoints: [`127.0.0.1:${timed.inboundPort}`], identity, timeout: '10s' },
      // no head deadline on either side; the outbound's idle timeout still holds
      { name: 'files-open', endpoints: [`127.0.0.1:${open.inboundPort}`], identity, timeout: '0\n      idleTimeout: 2500ms' },
      // two endpoints, quiet streams cut by a 1 s idle timeout, and a detector that ejects after 3 failures
      { name: 'files-quiet', endpoints: [`127.0.0.1:${timed.inboundPort}`, `127.0.0.1:${open.inboundPort}`], identity, timeout: '10s\n      idleTimeout: 1s\n      outlierDetection: {consecutiveFailures: 3}' },
    ],
  });
});

t.teardown(async () => {
  for (const c of clients) c.close();
  await Promise.all([frontend?.stop('SIGKILL'), timed?.stop('SIGKILL'), open?.stop('SIGKILL')]);
  await ca?.stop();
  server?.forceShutdown();
});

function clientFor(authority: string): Client {
  const Ctor = grpc.makeGenericClientConstructor(SERVICE, 'Files');
  const client = new Ctor(`127.0.0.1:${frontend.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as Client;
  clients.push(client);
  return client;
}

const summary = (err: grpc.ServiceError | null | undefined) => (err ? `code ${err.code}: ${err.details} (${err.metadata?.get('x-meshcar-error')})` : 'ok');

/** A client-streaming upload of `messages` 1 KiB messages, one every `everyMs`; the server answers `late`×100 ms after its end. */
function upload(client: Client, messages: number, everyMs: number, late: number, options: grpc.CallOptions = {}) {
  return new Promise<{ err: grpc.ServiceError | null; res?: Buffer; startedAt: number; endedAt: number; answeredAt: number }>((resolve) => {
    const startedAt = Date.now();
    let endedAt = 0;
    const call = (client.Upload as (o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Buffer) => void) => grpc.ClientWritableStream<Buffer>)(options, (err, res) => {
      clearInterval(timer);
      resolve({ err, res, startedAt, endedAt, answeredAt: Date.now() });
    });
    let sent = 0;
    const timer = setInterval(() => {
      call.write(Buffer.alloc(1024, late));
      if (++sent === messages) {
        clearInterval(timer);
        call.end();
        endedAt = Date.now();
      }
    }, everyMs);
  });
}

/** A server stream: resolves with its messages and how it ended. */
function watch(client: Client, first: number, then: number) {
  return new Promise<{ messages: number; err?: grpc.ServiceError; ms: number }>((resolve) => {
    const started = Date.now();
    let messages = 0;
    const call = (client.Watch as (req: Buffer) => grpc.ClientReadableStream<Buffer>)(Buffer.from(JSON.stringify({ first, then })));
    call.on('data', () => messages++);
    call.on('error', (err: grpc.ServiceError) => resolve({ messages, err, ms: Date.now() - started }));
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ messages, ms: Date.now() - started });
    });
  });
}

// The tests share the sidecars but each calls its own upstreams (authorities) and methods, and
// most of their time is waiting out timeouts: they run side by side.
t.jobs = 5;

t.test('a client-streaming upload slower than both timeouts, with steady progress, succeeds', async (t) => {
  // 1 KiB every 150 ms for 1.8 s: three times the outbound's and the inbound's 600 ms
  const r = await upload(clientFor('files'), 12, 150, 0);
  t.notOk(r.err, `answered: ${summary(r.err)} after ${Date.now() - r.startedAt} ms`);
  t.equal(r.res?.toString(), String(12 * 1024), 'the whole upload reached the server');
});

t.test('the upload ends and the answer is late: DEADLINE_EXCEEDED the timeout after the end of the body', async (t) => {
  for (const [authority, who] of [
    ['files', 'the outbound'],
    ['files-inbound-timed', 'the inbound'],
  ] as const) {
    // 6 messages 150 ms apart, then the server answers 5 s after the end
    const r = await upload(clientFor(authority), 6, 150, 50);
    t.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED, `${who}: ${summary(r.err)}`);
    t.same(r.err?.metadata.get('x-meshcar-error'), ['upstream_timeout']);
    t.match(r.err?.details ?? '', /within 600 ms/);
    const afterEnd = r.answeredAt - r.endedAt;
    t.ok(r.endedAt > 0 && afterEnd >= 550 && afterEnd < 3_000, `${who}: ${afterEnd} ms after the end of the upload (${r.answeredAt - r.startedAt} ms in all)`);
  }
});

t.test('timeout 0: a server stream whose first message comes after the former limit succeeds; the idle timeout still holds', async (t) => {
  const client = clientFor('files-open');
  // 1 s: well past the 600 ms elsewhere, and 1.5 s inside the idle timeout (1.2 s against 1.5 s
  // was cut when the loaded machine delayed the app's timer and the hops)
  const late = await watch(client, 1_000, 0);
  t.notOk(late.err, `first message after 1 s, past the 600 ms elsewhere: ${summary(late.err)}`);
  t.equal(late.messages, 1);
  const silent = await watch(client, 10_000, 0);
  t.equal(silent.err?.code, grpc.status.DEADLINE_EXCEEDED, `silent past the 2.5 s idle timeout: ${summary(silent.err)}`);
  t.same(silent.err?.metadata.get('x-meshcar-error'), ['upstream_timeout']);
  t.ok(silent.ms >= 2_400 && silent.ms < 8_000, `cut by the idle timeout after ${silent.ms} ms`);
});

// review-diff-s7 B2: every gRPC call has a request body, and while it is still coming the
// sidecars' limits have not started (they run from its end): a limit of theirs in the field,
// which the next hop counts from the head's arrival, would cut a slow upload they let run
t.test("the app sees the caller's own grpc-timeout: the sidecars' limits start at the end of the request body", async (t) => {
  const seen = await new Promise<{ err: grpc.ServiceError | null; res?: Buffer }>((resolve) => {
    (clientFor('files').Deadline as (req: Buffer, o: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Buffer) => void) => void)(Buffer.from('x'), { deadline: Date.now() + 60_000 }, (err, res) => resolve({ err, res }));
  });
  t.notOk(seen.err, summary(seen.err));
  const left = Number(seen.res?.toString());
  t.ok(left > 600 && left <= 60_000, `the client gave 60 s; the app was told ${left} ms, not the sidecar's 600 ms`);
});

t.test('quiet answered streams cut by the idle timeout eject no endpoint', async (t) => {
  const client = clientFor('files-quiet');
  const ends = await Promise.all(Array.from({ length: 8 }, () => watch(client, 0, -1)));
  for (const end of ends) t.ok(end.messages === 1 && end.err !== undefined, `answered, then cut by the 1 s idle timeout: ${summary(end.err)} after ${end.ms} ms`);
  const metrics = (await frontend.admin('/metrics')).body;
  const ejections = metrics.split('\n').filter((line) => line.startsWith('meshcar_outlier_ejections_total') && line.includes('upstream="files-quiet"') && !/ 0$/.test(line));
  t.same(ejections, [], 'no ejection');
  const after = await watch(client, 0, 0);
  t.notOk(after.err, `the endpoints still serve: ${summary(after.err)}`);
});
