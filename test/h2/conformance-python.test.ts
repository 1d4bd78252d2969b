// Conformance against an independent implementation: Python's h2 (Debian python3-h2) plays the
// other side over h2c with prior knowledge (test/h2/fixtures/h2peer.py). Ordinary exchanges go
// through h2's own state machine; hostile sequences are written frame by frame, and every
// answer our codec gives (GOAWAY code, RST_STREAM code, or a connection still answering PING)
// is checked against RFC 9113, and counted through the observer with the right reason.

import t from 'tap';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '../../src/h2/constants.js';
import type { IncomingHeaders } from '../../src/h2/headers.js';
import type { H2Limits } from '../../src/h2/limits.js';
import { connectOurClient, pythonWithH2, readBody, runPythonPeer, startOurServer, waitFor, RecordingH2Observer, type PeerEvent } from './fixtures/h2-helpers.js';

const PEER = fileURLToPath(new URL('./fixtures/h2peer.py', import.meta.url));
const PYTHON = pythonWithH2();
if (PYTHON === undefined) {
  t.plan(0, 'python3-h2 is not installed (make tools)');
  process.exit(0);
}

type Event = PeerEvent;

const runPeer = (args: string[], onLine?: (e: Event) => void) => runPythonPeer(PYTHON!, PEER, args, onLine);

const { PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM } = ErrorCode;

function ourServer(limits?: Partial<H2Limits>) {
  return startOurServer(
    (stream, headers, _end, conn) => {
      stream.on('error', () => {});
      const path = headers[':path'] as string;
      if (path === '/hold') return; // never answered
      if (path === '/goaway-slow') conn.close();
      let trailers: IncomingHeaders | undefined;
      stream.on('trailers', (tr: IncomingHeaders) => (trailers = tr));
      readBody(stream).then(
        (body) => {
          if (stream.destroyed) return;
          if (path.startsWith('/big')) {
            stream.respond({ ':status': 200 });
            stream.end(Buffer.alloc(Number(path.split('=')[1]), 0x61));
          } else if (path === '/trailers') {
            stream.respond({ ':status': 200 }, { waitForTrailers: true });
            stream.on('wantTrailers', () => stream.sendTrailers({ 'x-got': trailers?.['x-req-trailer'] ?? 'none' }));
            stream.end(body);
          } else {
            stream.respond({ ':status': 200 });
            stream.end(path === '/echo' ? body : `ok ${path} ${body.length}`);
          }
        },
        () => {},
      );
    },
    { limits: { maxResetsPerWindow: 100, ...limits } },
  );
}

t.test('python h2 client ↔ our server: ordinary exchanges', async (t) => {
  const server = await ourServer();
  t.teardown(server.close);
  let ev = await runPeer(['client', String(server.port), 'h2-get']);
  t.ok(ev.some((e) => e.status === '200' && e.stream === 1), 'response head');
  t.ok(ev.some((e) => e.body === 11 && e.text === 'ok /hello 0'), 'body');
  t.ok(ev.some((e) => e.pong), 'PING answered');

  ev = await runPeer(['client', String(server.port), 'h2-post']);
  t.ok(ev.some((e) => e.body === 1 << 20), 'a 1 MiB body sent within our windows came back whole');

  ev = await runPeer(['client', String(server.port), 'h2-trailers']);
  t.ok(ev.some((e) => (e.trailers as Record<string, string> | undefined)?.['x-got'] === 'yes'), 'request trailers received, response trailers sent');

  const small = await startOurServer((stream) => {
    stream.respond({ ':status': 200 });
    stream.end(Buffer.alloc(20_000, 0x62));
  });
  t.teardown(small.close);
  ev = await runPeer(['client', String(small.port), 'h2-small-window']);
  t.ok(ev.some((e) => e.body === 20_000), 'a 20 kB body through a 100-byte window the peer set by SETTINGS');
  t.same(server.observer.streamErrors, [], 'no stream errors in ordinary traffic');
});

// scenario → what our server must answer
const hostile: Array<[string, Event, string?, Partial<H2Limits>?]> = [
  ['backwards', { goaway: PROTOCOL_ERROR }, 'stream_id_error'],
  ['reuse', { goaway: PROTOCOL_ERROR }, 'stream_id_error'],
  ['even', { goaway: PROTOCOL_ERROR }, 'stream_id_error'],
  ['data-idle', { goaway: PROTOCOL_ERROR }, 'protocol_error'],
  ['rst-idle', { goaway: PROTOCOL_ERROR }, 'protocol_error'],
  ['data-closed', { rst: 1, code: STREAM_CLOSED }],
  ['window-overflow-conn', { goaway: FLOW_CONTROL_ERROR }, 'flow_control_error'],
  ['window-overflow-stream', { rst: 1, code: FLOW_CONTROL_ERROR }],
  ['window-zero-stream', { rst: 1, code: PROTOCOL_ERROR }],
  ['settings-window-overflow', { goaway: FLOW_CONTROL_ERROR }, 'flow_control_error'],
  ['settings-bad-frame-size', { goaway: PROTOCOL_ERROR }, 'protocol_error'],
  ['continuation-interrupted', { goaway: PROTOCOL_ERROR }, 'protocol_error'],
  ['continuation-wrong-stream', { goaway: PROTOCOL_ERROR }, 'protocol_error'],
  ['continuation-flood', { goaway: ENHANCE_YOUR_CALM }, 'continuation_flood'],
  ['continuation-bytes', { goaway: ENHANCE_YOUR_CALM }, 'continuation_flood'],
  ['hpack-bomb', { headers: 3, status: '431' }],
  ['many-fields', { headers: 1, status: '431' }],
  ['bad-hpack', { goaway: COMPRESSION_ERROR }, 'compression_error'],
  ['settings-flood', { goaway: ENHANCE_YOUR_CALM }, 'settings_flood'],
  ['ping-flood', { goaway: ENHANCE_YOUR_CALM }, 'ping_flood'],
  ['priority-flood', { goaway: ENHANCE_YOUR_CALM }, 'priority_flood'],
  ['window-update-flood', { goaway: ENHANCE_YOUR_CALM }, 'window_update_flood'],
  ['goaway-flood', { goaway: ENHANCE_YOUR_CALM }, 'goaway_flood'],
  ['empty-data-flood', { goaway: ENHANCE_YOUR_CALM }, 'empty_data_flood'],
  ['rapid-reset', { goaway: ENHANCE_YOUR_CALM }, 'rapid_reset'],
  ['made-you-reset', { goaway: ENHANCE_YOUR_CALM }, 'made_you_reset'],
  ['push-promise', { goaway: PROTOCOL_ERROR }, 'push_refused'],
  ['frame-too-large', { goaway: FRAME_SIZE_ERROR }, 'frame_size_error'],
  ['max-streams', { rst: 11, code: REFUSED_STREAM }, undefined, { maxConcurrentStreams: 5 }],
  ['priority-self', { rst: 5, code: PROTOCOL_ERROR }],
  ['priority-self-idle', { goaway: PROTOCOL_ERROR }, 'protocol_error'],
  ['flow-overrun-stream', { rst: 1, code: FLOW_CONTROL_ERROR }, undefined, { initialWindowSize: 65_536 }],
  ['bad-preface', { goaway: PROTOCOL_ERROR }, 'bad_preface'],
  ['preface-ack', { goaway: PROTOCOL_ERROR }, 'bad_preface'],
  ...['upper', 'pseudo-after', 'dup-path', 'no-path', 'empty-path', 'connection', 'te', 'unknown-pseudo', 'status-in-request', 'trailer-pseudo', 'content-length', 'content-length-over'].map(
    (kind): [string, Event] => [`malformed-${kind}`, { rst: 1, code: PROTOCOL_ERROR }],
  ),
];

t.test('python raw client → our server: hostile sequences', async (t) => {
  // a server of our own per scenario; one python process runs them in turn (start-up is slow)
  const servers = await Promise.all(hostile.map(([, , , limits]) => ourServer(limits)));
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const all = await runPeer(['clients', ...hostile.map(([scenario], i) => `${servers[i]!.port}:${scenario}`)]);
  for (const [i, [scenario, expected, reason]] of hostile.entries()) {
    const server = servers[i]!;
    const ev = all.filter((e) => e.scenario === scenario);
    const hit = ev.find((e) => Object.entries(expected).every(([k, v]) => e[k] === v));
    t.ok(hit, `${scenario}: ${JSON.stringify(expected)} (got ${JSON.stringify(ev.filter((e) => !('data' in e)).slice(0, 6))})`);
    if ('goaway' in expected) {
      await waitFor(() => server.observer.closed.length > 0, `${scenario} counted`);
      t.equal(server.observer.closed[0]?.reason, reason, `${scenario}: closed with reason ${reason} (${JSON.stringify(server.observer.closed)})`);
    } else {
      t.ok(ev.some((e) => e.pong), `${scenario}: a stream error only, the connection still answers PING`);
      // it ends only when the peer leaves: no GOAWAY of ours, no error reason
      t.notOk(
        server.observer.closed.some((c) => c.reason !== 'socket_error' && c.reason !== 'normal'),
        `${scenario}: the connection stayed up (${JSON.stringify(server.observer.closed)})`,
      );
    }
  }
});

t.test('python raw client: graceful two-step GOAWAY lets the request in flight and one racing it finish', async (t) => {
  const server = await ourServer();
  t.teardown(server.close);
  const ev = await runPeer(['client', String(server.port), 'graceful']);
  const goaways = ev.filter((e) => 'goaway' in e);
  t.match(goaways[0], { goaway: 0, last: 0x7fffffff }, 'first GOAWAY announces 2^31-1');
  t.match(goaways[1], { goaway: 0, last: 3 }, 'second GOAWAY names the last stream really accepted');
  t.ok(
    ev.some((e) => e.data === 3 && e.end),
    'the stream that raced the first GOAWAY was served',
  );
  t.ok(
    ev.some((e) => e.data === 1 && e.end),
    'the stream in flight finished',
  );
});

t.test('our client ↔ python h2 server', async (t) => {
  const session = async (scenario: string, run: (conn: Awaited<ReturnType<typeof connectOurClient>>, observer: RecordingH2Observer) => Promise<void>): Promise<{ ev: Event[]; observer: RecordingH2Observer }> => {
    let portResolve!: (p: number) => void;
    const port = new Promise<number>((r) => (portResolve = r));
    const done = runPeer(['server', scenario], (e) => {
      if (typeof e.port === 'number') portResolve(e.port);
    });
    const observer = new RecordingH2Observer();
    const conn = await connectOurClient(await port, { observer });
    await run(conn, observer);
    conn.close();
    return { ev: await done, observer };
  };
  const get = (conn: Awaited<ReturnType<typeof connectOurClient>>, path: string, body?: Buffer) =>
    new Promise<{ head?: IncomingHeaders; informational: IncomingHeaders[]; body: Buffer; trailers?: IncomingHeaders; err?: { h2Code: number } }>((resolve) => {
      const s = conn.request({ ':method': body ? 'POST' : 'GET', ':scheme': 'http', ':authority': 'x', ':path': path }, { endStream: body === undefined });
      const r: { head?: IncomingHeaders; informational: IncomingHeaders[]; body: Buffer; trailers?: IncomingHeaders; err?: { h2Code: number } } = { informational: [], body: Buffer.alloc(0) };
      s.on('response', (h: IncomingHeaders) => (r.head = h));
      s.on('headers', (h: IncomingHeaders) => r.informational.push(h));
      s.on('trailers', (h: IncomingHeaders) => (r.trailers = h));
      s.on('error', (err: { h2Code: number }) => resolve({ ...r, err }));
      readBody(s).then((b) => resolve({ ...r, body: b }), () => {});
      if (body) s.end(body);
    });

  const ordinary = async () => {
  const r = await session('ordinary', async (conn) => {
    const hello = await get(conn, '/hello');
    t.equal(hello.head?.['x-peer'], 'python-h2');
    t.equal(hello.body.toString(), 'hello from h2');
    const tr = await get(conn, '/trailers', Buffer.from('xyz'));
    t.equal(tr.body.toString(), 'xyz');
    t.equal(tr.trailers?.['grpc-status'], '0', 'response trailers');
    const big = Buffer.alloc(1 << 20, 0x63);
    const echo = await get(conn, '/echo', big);
    t.equal(echo.body.length, big.length, 'a 1 MiB body both ways under python-h2 flow control');
    const info = await get(conn, '/informational');
    t.equal(info.informational[0]?.[':status'], '103', 'an informational head before the final one');
    t.equal(info.body.toString(), 'final');
  });
  t.same(r.observer.streamErrors, [], 'no stream errors');
  };

  const expectRst = async (path: string, reason: string) => {
    const { ev, observer } = await session(path, async (conn, observer) => {
      const res = await get(conn, path);
      t.equal(res.err?.h2Code, PROTOCOL_ERROR, `${path}: the stream fails with PROTOCOL_ERROR`);
      await waitFor(() => observer.streamErrors.length > 0, 'stream error counted');
    });
    t.ok(ev.some((e) => e.rst === 1 && e.code === PROTOCOL_ERROR), `${path}: python saw RST_STREAM PROTOCOL_ERROR`);
    t.equal(observer.streamErrors[0]?.reason, reason);
  };
  const expectGoaway = async (path: string, reason: string, code: number = PROTOCOL_ERROR) => {
    const r = await session(path, async (conn) => {
      const res = await get(conn, path);
      t.ok(res.err, `${path}: the request fails`);
      await waitFor(() => conn.destroyed, 'connection closed');
    });
    t.ok(r.ev.some((e) => e.goaway === code), `${path}: python saw GOAWAY ${code}`);
    t.equal(r.observer.closed[0]?.reason, reason);
  };

  const refused = () => session('goaway', async (conn) => {
    const res = await get(conn, '/goaway');
    t.match(res.err, { reason: 'refused', h2Code: ErrorCode.REFUSED_STREAM }, 'a stream above the GOAWAY last id fails as refused (safe to retry)');
    await waitFor(() => conn.goawayReceived, 'GOAWAY seen');
    t.throws(() => conn.request({ ':method': 'GET', ':scheme': 'http', ':authority': 'x', ':path': '/' }), { code: 'ERR_H2_SESSION_CLOSING' }, 'no new streams after GOAWAY');
  });
  // independent peers: run side by side
  await Promise.all([
    ordinary(),
    expectRst('/upper', 'malformed_headers'),
    expectRst('/no-status', 'malformed_headers'),
    expectRst('/content-length', 'content_length_mismatch'),
    expectRst('/data-before-headers', 'malformed_headers'),
    expectGoaway('/push', 'push_refused'),
    expectGoaway('/even-stream', 'stream_id_error'),
    // a hostile upstream meets the same limits as a hostile caller
    expectGoaway('/ping-flood', 'ping_flood', ENHANCE_YOUR_CALM),
    expectGoaway('/window-overflow', 'flow_control_error', FLOW_CONTROL_ERROR),
    expectGoaway('/continuation-flood', 'continuation_flood', ENHANCE_YOUR_CALM),
    refused(),
  ]);
});
